// Admin text commands (doc/protocol.md §4). A reply is appended to the connection's output in
// one piece, so it leaves in one burst (gearadmin stops reading after 5 ms of silence), except
// the listings that grow with functions, workers or jobs (`status`, `prioritystatus`,
// `workers`, `show jobs`, `show unique jobs`): they are streamed a slice per loop turn
// (server/reply_producer.h, doc/protocol.md §4.5), back to back, so a small one still leaves in
// one piece and a large one never stalls other peers.
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/text.h"
#include "jenkins/hub.h"
#include "jenkins/master_settings.h"
#include "protocol/admin_line.h"
#include "protocol/printable.h"
#include "server/access.h"
#include "server/broker/broker.h"
#include "server/broker/function.h"
#include "server/broker/job.h"
#include "server/commands.h"
#include "server/connection.h"

#ifndef ROUNDHOUSE_VERSION
#error "ROUNDHOUSE_VERSION must be defined by the build"
#endif

namespace roundhouse::server {

namespace {

void AppendNumber(std::string* out, int64_t value) {
  char buf[24];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, static_cast<size_t>(result.ptr - buf));
}

void AppendOk(std::string* out) { out->append("OK\r\n"); }

// Without access control, shutdown and jenkins add/remove are for loopback peers only; with it,
// the operator group of the ACL decides instead (doc/acl.md), so a remote identity can be
// trusted with them and a local one refused.
bool LoopbackOnly(Connection& conn) {
  const AccessControl* access = conn.host().access();
  return (access == nullptr || !access->enabled()) && !conn.IsLoopback();
}

// The command as the ACL log and reply name it: its first token, and the subcommand of jenkins.
std::string AdminSubject(const std::vector<std::string_view>& tok) {
  std::string subject(tok[0]);
  if (tok.size() >= 2 && EqualsIgnoreCase(tok[0], "jenkins")) {
    subject += ' ';
    subject += tok[1];
  }
  return subject;
}

// One line per function, in ascending byte order of name, streamed (server/reply_producer.h):
// each slice resumes after the last name listed (Broker::FunctionAfter), then ".\n".
class FunctionLines final : public ReplyProducer {
 public:
  using Line = void (*)(std::string* out, const broker::Function& fn);
  FunctionLines(const broker::Broker& broker, Line line) : broker_(broker), line_(line) {}

  bool Produce(std::string* out, size_t budget) override {
    const size_t start = out->size();
    const broker::Function* fn =
        last_ ? broker_.FunctionAfter(*last_) : broker_.FunctionAfter("", /*inclusive=*/true);
    const broker::Function* listed = nullptr;
    while (fn != nullptr && out->size() - start < budget) {
      line_(out, *fn);
      listed = fn;
      fn = broker_.FunctionAfter(fn->name());
    }
    if (fn == nullptr) {
      out->append(".\n");
      return true;
    }
    if (listed != nullptr) last_ = std::string(listed->name());
    return false;
  }

 private:
  const broker::Broker& broker_;
  const Line line_;
  std::optional<std::string> last_;  // the last name listed; nullopt before the first slice
};

// status: FUNC\tTOTAL\tRUNNING\tWORKERS\n per function (by name), then ".\n".
void StatusLine(std::string* out, const broker::Function& fn) {
  protocol::AppendEscaped(out, fn.name());
  out->push_back('\t');
  AppendNumber(out, static_cast<int64_t>(fn.total()));
  out->push_back('\t');
  AppendNumber(out, static_cast<int64_t>(fn.running()));
  out->push_back('\t');
  AppendNumber(out, static_cast<int64_t>(fn.worker_count()));
  out->push_back('\n');
}

// prioritystatus: FUNC\tHIGH\tNORMAL\tLOW\tWORKERS\n (queued jobs per priority), then ".\n".
void PriorityStatusLine(std::string* out, const broker::Function& fn) {
  protocol::AppendEscaped(out, fn.name());
  for (broker::Priority p :
       {broker::Priority::kHigh, broker::Priority::kNormal, broker::Priority::kLow}) {
    out->push_back('\t');
    AppendNumber(out, static_cast<int64_t>(fn.queued(p)));
  }
  out->push_back('\t');
  AppendNumber(out, static_cast<int64_t>(fn.worker_count()));
  out->push_back('\n');
}

// workers: FD IP ID : F1 F2\n per connection that acted as a worker (by fd, ties in attach
// order), then ".\n". Streamed; each slice resumes after the last worker's (fd, serial).
class WorkerLines final : public ReplyProducer {
 public:
  explicit WorkerLines(const broker::Broker& broker) : broker_(broker) {}

  bool Produce(std::string* out, size_t budget) override {
    const size_t start = out->size();
    while (out->size() - start < budget) {
      const std::vector<const broker::Peer*> batch =
          broker_.WorkerPeersAfter(last_ ? &*last_ : nullptr, kBatch);
      for (const broker::Peer* peer : batch) Line(out, *peer);
      if (batch.size() < kBatch) {
        out->append(".\n");
        return true;
      }
      last_ = broker::Broker::KeyOf(*batch.back());
    }
    return false;
  }

 private:
  // Workers fetched per look-up (each look-up is one pass over the attached peers).
  static constexpr size_t kBatch = 512;

  static void Line(std::string* out, const broker::Peer& peer) {
    AppendNumber(out, peer.Fd());
    out->push_back(' ');
    out->append(peer.Address());
    out->push_back(' ');
    protocol::AppendEscaped(out, peer.state().client_id);  // spaces verbatim, as gearmand
    out->append(" :");
    for (const broker::Registration& reg : peer.state().registrations) {
      out->push_back(' ');
      protocol::AppendEscaped(out, reg.function->name(), /*escape_space=*/true);
    }
    out->push_back('\n');
  }

  const broker::Broker& broker_;
  std::optional<broker::Broker::WorkerKey> last_;  // nullopt before the first slice
};

// show jobs: HANDLE\tRETRIES\tIGNORE\tQUEUED\n (QUEUED = durable/background), then ".\n".
// show unique jobs: UNIQ\n, then ".\n". In creation order, streamed through a broker-kept
// cursor (Broker::JobCursor), so a job ending between two slices cannot make it dangle.
class JobLines final : public ReplyProducer {
 public:
  JobLines(const broker::Broker& broker, bool unique) : cursor_(broker), unique_(unique) {}

  bool Produce(std::string* out, size_t budget) override {
    const size_t start = out->size();
    while (out->size() - start < budget) {
      const broker::Job* job = cursor_.Next();
      if (job == nullptr) {
        out->append(".\n");
        return true;
      }
      if (unique_) {
        protocol::AppendEscaped(out, job->unique());
      } else {
        protocol::AppendEscaped(out, job->handle());
        out->push_back('\t');
        AppendNumber(out, static_cast<int64_t>(job->retries()));
        out->push_back('\t');
        out->push_back(job->ignored() ? '1' : '0');
        out->push_back('\t');
        out->push_back(job->background() || job->durable() ? '1' : '0');
      }
      out->push_back('\n');
    }
    return false;
  }

 private:
  broker::Broker::JobCursor cursor_;
  const bool unique_;
};

void ShowJobs(Connection& conn, bool unique) {
  conn.StartReply(std::make_unique<JobLines>(conn.broker(), unique));
}

// `show jobs` / `show unique jobs`; anything else after `show` is UNKNOWN_SHOW_ARGUMENTS.
void Show(Connection& conn, const std::vector<std::string_view>& tok) {
  if (tok.size() == 1) {
    protocol::AppendUnknownCommand(conn.Out(), tok[0]);
  } else if (tok.size() == 2 && EqualsIgnoreCase(tok[1], "jobs")) {
    ShowJobs(conn, false);
  } else if (tok.size() == 3 && EqualsIgnoreCase(tok[1], "unique") &&
             EqualsIgnoreCase(tok[2], "jobs")) {
    ShowJobs(conn, true);
  } else {
    conn.Out()->append("ERR UNKNOWN_SHOW_ARGUMENTS\r\n");
  }
}

void Cancel(Connection& conn, const std::vector<std::string_view>& tok) {
  if (tok.size() < 3) {
    protocol::AppendUnknownCommand(conn.Out(), tok[0]);
  } else if (tok.size() == 3 && EqualsIgnoreCase(tok[1], "job")) {
    if (conn.broker().CancelJob(tok[2]) == broker::CancelResult::kOk) {
      AppendOk(conn.Out());
    } else {
      conn.Out()->append("ERR UNKNOWN_JOB\r\n");
    }
  } else {
    conn.Out()->append("ERR UNKNOWN_ERROR\r\n");
  }
}

// `create function NAME` / `drop function NAME`; NAME is the token as parsed, whichever line
// ending was used (gearmand loses a byte on bare `\n`).
bool FunctionArgument(const std::vector<std::string_view>& tok) {
  return tok.size() == 3 && EqualsIgnoreCase(tok[1], "function");
}

void CreateFunction(Connection& conn, const std::vector<std::string_view>& tok) {
  if (!FunctionArgument(tok)) {
    protocol::AppendInvalidArguments(conn.Out(), tok[0]);
    return;
  }
  conn.broker().CreateFunction(tok[2]);
  AppendOk(conn.Out());
}

void DropFunction(Connection& conn, const std::vector<std::string_view>& tok) {
  if (!FunctionArgument(tok)) {
    protocol::AppendInvalidArguments(conn.Out(), tok[0]);
    return;
  }
  switch (conn.broker().DropFunction(tok[2])) {
    case broker::DropResult::kOk:
      AppendOk(conn.Out());
      break;
    case broker::DropResult::kNotFound:
      conn.Out()->append("ERR function not found\r\n");
      break;
    case broker::DropResult::kHasWorkersOrRunning:
      conn.Out()->append("ERR there are still connected workers or executing clients\r\n");
      break;
    case broker::DropResult::kHasQueuedJobs:
      conn.Out()->append("ERR there are still queued jobs\r\n");
      break;
  }
}

// maxqueue NAME [N | H N | H N L]; numbers atoi-like, negative -> 0 (doc/protocol.md §4.3).
void MaxQueue(Connection& conn, const std::vector<std::string_view>& tok) {
  if (tok.size() < 2) {
    protocol::AppendInvalidArguments(conn.Out(), tok[0]);
    return;
  }
  auto limit = [](std::string_view text) -> uint32_t {
    const long long n = protocol::ParseLeadingInt(text);
    if (n <= 0) return 0;
    return n > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(n);
  };
  std::array<uint32_t, 3> limits = {0, 0, 0};
  if (tok.size() == 3) {
    limits.fill(limit(tok[2]));
  } else if (tok.size() == 4) {
    limits = {limit(tok[2]), limit(tok[3]), 0};
  } else if (tok.size() == 5) {
    limits = {limit(tok[2]), limit(tok[3]), limit(tok[4])};
  }
  conn.broker().SetMaxQueue(tok[1], limits);
  AppendOk(conn.Out());
}

// shutdown [graceful]: loopback peers only (without ACL); `OK\r\n` is written before the server
// acts.
void Shutdown(Connection& conn, const std::vector<std::string_view>& tok) {
  if (LoopbackOnly(conn)) {
    protocol::AppendAdminError(conn.Out(), "PERMISSION_DENIED",
                               "shutdown only allowed from loopback");
    return;
  }
  bool graceful = false;
  if (tok.size() == 2 && EqualsIgnoreCase(tok[1], "graceful")) {
    graceful = true;
  } else if (tok.size() != 1) {
    protocol::AppendInvalidArguments(conn.Out(), tok[0]);
    return;
  }
  AppendOk(conn.Out());
  conn.host().RequestShutdown(graceful);
}

// jenkins list | show NAME | add NAME K=V,K=V,... | remove NAME (roundhouse's own; see
// doc/jenkins.md). add/remove change the registry and carry credentials: loopback only (without
// ACL; with it, the operator group).
void Jenkins(Connection& conn, const std::vector<std::string_view>& tok) {
  std::string* out = conn.Out();
  jenkins::Hub* hub = conn.host().jenkins_hub();
  if (hub == nullptr) {
    protocol::AppendAdminError(out, "NOT_AVAILABLE", "no Jenkins support in this server");
    return;
  }
  const std::string_view sub = tok.size() >= 2 ? tok[1] : std::string_view();
  if (EqualsIgnoreCase(sub, "list") && tok.size() == 2) {
    // NAME\tHEALTH\tBASE_URL\tMANAGER\tIDLE_EXECUTORS\tTOTAL_EXECUTORS\tBUILDS_IN_FLIGHT\n
    // The counts are the summary's (jenkins/summary.h), as in /api/jenkins and /metrics.
    std::string reply;
    for (const jenkins::MasterSummary& m : hub->Summaries()) {
      const int idle = m.executors.idle, total = m.executors.total;
      reply.append(m.name).append("\t").append(m.health).append("\t").append(m.base_url);
      reply.append("\t").append(m.manager).append("\t");
      AppendNumber(&reply, idle);
      reply.push_back('\t');
      AppendNumber(&reply, total);
      reply.push_back('\t');
      AppendNumber(&reply, static_cast<int64_t>(m.builds.size()));
      reply.push_back('\n');
    }
    reply.append(".\n");
    out->append(reply);
    return;
  }
  if (EqualsIgnoreCase(sub, "show") && tok.size() == 3) {
    const auto lines = hub->Describe(tok[2]);
    if (lines.empty()) {
      protocol::AppendAdminError(out, "UNKNOWN_MASTER", tok[2]);
      return;
    }
    std::string reply;
    for (const auto& [key, value] : lines) reply.append(key).append(" ").append(value).append("\n");
    reply.append(".\n");
    out->append(reply);
    return;
  }
  const bool add = EqualsIgnoreCase(sub, "add") && tok.size() == 4;
  const bool remove = EqualsIgnoreCase(sub, "remove") && tok.size() == 3;
  if (!add && !remove) {
    protocol::AppendInvalidArguments(out, tok[0]);
    return;
  }
  if (LoopbackOnly(conn)) {
    protocol::AppendAdminError(out, "PERMISSION_DENIED", "jenkins add/remove only allowed from loopback");
    return;
  }
  if (remove) {
    roundhouse::Status s = hub->Remove(tok[2]);
    if (!s.ok()) {
      protocol::AppendAdminError(out, "UNKNOWN_MASTER", s.message());
      return;
    }
    RH_LOG(kNotice, "admin: jenkins remove %.*s", static_cast<int>(tok[2].size()), tok[2].data());
    AppendOk(out);
    return;
  }
  auto raw = jenkins::ParseSettingList(tok[3]);
  Result<jenkins::MasterSettings> settings =
      raw.ok() ? jenkins::ParseMasterSettings(tok[2], raw.value(), "admin", hub->runtime_trust())
               : Result<jenkins::MasterSettings>(raw.status());
  roundhouse::Status s = settings.ok() ? hub->Add(std::move(settings).value(), /*runtime=*/true)
                           : settings.status();
  if (!s.ok()) {
    protocol::AppendAdminError(out, "INVALID_ARGUMENTS", s.message());
    return;
  }
  RH_LOG(kNotice, "admin: jenkins add %.*s", static_cast<int>(tok[2].size()), tok[2].data());
  AppendOk(out);
}

}  // namespace

Disposition HandleAdminLine(Connection& conn, std::string_view line) {
  std::vector<std::string_view>& tok = conn.tokens();
  if (!protocol::Tokenize(line, conn.limits(), &tok)) return Disposition::kClose;
  if (tok.empty() || tok[0].empty()) {
    protocol::AppendUnknownCommand(conn.Out(), "");
    return Disposition::kKeep;
  }
  if (const auto kind = acl::AdminKindOf(tok)) {
    const std::string subject = AdminSubject(tok);
    if (!Permitted(conn, *kind, subject)) {
      protocol::AppendAdminError(conn.Out(), "PERMISSION_DENIED",
                                 PermissionDeniedText(conn, *kind, subject));
      return Disposition::kKeep;
    }
  }
  const std::string_view cmd = tok[0];
  std::string* out = nullptr;
  if (EqualsIgnoreCase(cmd, "status")) {
    conn.StartReply(std::make_unique<FunctionLines>(conn.broker(), StatusLine));
  } else if (EqualsIgnoreCase(cmd, "prioritystatus")) {
    conn.StartReply(std::make_unique<FunctionLines>(conn.broker(), PriorityStatusLine));
  } else if (EqualsIgnoreCase(cmd, "workers")) {
    conn.StartReply(std::make_unique<WorkerLines>(conn.broker()));
  } else if (EqualsIgnoreCase(cmd, "version")) {
    conn.Out()->append("OK " ROUNDHOUSE_VERSION "\n");
  } else if (EqualsIgnoreCase(cmd, "getpid")) {
    out = conn.Out();
    out->append("OK ");
    AppendNumber(out, static_cast<int64_t>(getpid()));
    out->push_back('\n');
  } else if (EqualsIgnoreCase(cmd, "verbose")) {
    out = conn.Out();
    out->append("OK ");
    out->append(log::LevelName(log::CurrentLevel()));
    out->push_back('\n');
  } else if (EqualsIgnoreCase(cmd, "show")) {
    Show(conn, tok);
  } else if (EqualsIgnoreCase(cmd, "cancel")) {
    Cancel(conn, tok);
  } else if (EqualsIgnoreCase(cmd, "create")) {
    CreateFunction(conn, tok);
  } else if (EqualsIgnoreCase(cmd, "drop")) {
    DropFunction(conn, tok);
  } else if (EqualsIgnoreCase(cmd, "maxqueue")) {
    MaxQueue(conn, tok);
  } else if (EqualsIgnoreCase(cmd, "shutdown")) {
    Shutdown(conn, tok);
  } else if (EqualsIgnoreCase(cmd, "jenkins")) {
    Jenkins(conn, tok);
  } else {
    protocol::AppendUnknownCommand(conn.Out(), cmd);
  }
  return Disposition::kKeep;
}

}  // namespace roundhouse::server
