#include "server/http/metrics.h"

#include <cinttypes>
#include <cstdio>
#include <optional>
#include <utility>

#include "protocol/printable.h"

namespace roundhouse::server::http {
namespace {

class Out {
 public:
  void Header(std::string_view name, std::string_view type, std::string_view help) {
    text_ += "# HELP roundhouse_";
    text_ += name;
    text_ += ' ';
    text_ += help;
    text_ += "\n# TYPE roundhouse_";
    text_ += name;
    text_ += ' ';
    text_ += type;
    text_ += '\n';
  }
  // `labels` is the already formatted `a="x",b="y"` list, or empty.
  void Sample(std::string_view name, std::string_view labels, std::string_view value) {
    text_ += "roundhouse_";
    text_ += name;
    if (!labels.empty()) {
      text_ += '{';
      text_ += labels;
      text_ += '}';
    }
    text_ += ' ';
    text_ += value;
    text_ += '\n';
  }
  void Sample(std::string_view name, std::string_view labels, uint64_t value) {
    Sample(name, labels, std::to_string(value));
  }
  void SampleDouble(std::string_view name, std::string_view labels, double value) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.6f", value);
    Sample(name, labels, buf);
  }
  std::string Take() { return std::move(text_); }

 private:
  std::string text_;
};

std::string Label(std::string_view name, std::string_view value) {
  std::string out(name);
  out += "=\"";
  out += EscapeLabelValue(value);
  out += '"';
  return out;
}

std::string Seconds(int64_t micros) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6f", static_cast<double>(micros) / 1e6);
  return buf;
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  // First the escaped form (valid UTF-8, no control characters, one-to-one), then the text
  // format's own escapes; only `\\` and `"` can remain to be escaped.
  const std::string escaped = protocol::Escaped(value);
  std::string out;
  out.reserve(escaped.size());
  for (char c : escaped) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

std::string FormatMetrics(const ServerInfo& server, const std::vector<FunctionInfo>& functions,
                          size_t worker_count,
                          const std::vector<jenkins::MasterSummary>& masters,
                          const FunctionInfo* other, size_t function_count) {
  Out o;
  o.Header("info", "gauge", "Always 1; the version is a label.");
  o.Sample("info", Label("version", server.version), uint64_t{1});
  o.Header("uptime_seconds", "gauge", "Seconds since the server started.");
  o.SampleDouble("uptime_seconds", "", static_cast<double>(server.uptime_ms) / 1000.0);
  o.Header("connections", "gauge", "Open Gearman connections.");
  o.Sample("connections", "", server.connections);
  o.Header("memory_budget_bytes", "gauge", "The --max-memory budget.");
  o.Sample("memory_budget_bytes", "", server.memory_budget_bytes);
  o.Header("job_bytes", "gauge", "Bytes of live jobs' data, handles and uniques (budgeted).");
  o.Sample("job_bytes", "", server.job_bytes);
  o.Header("unsent_output_bytes", "gauge", "Bytes owed to peers, not yet sent (budgeted).");
  o.Sample("unsent_output_bytes", "", server.unsent_output_bytes);
  o.Header("memory_refusals_total", "counter", "Submissions refused at the memory budget.");
  o.Sample("memory_refusals_total", "", server.memory_refusals);
  o.Header("output_overflows_total", "counter",
           "Connections closed because their output passed --max-output-queue.");
  o.Sample("output_overflows_total", "", server.output_overflows);
  o.Header("partial_frame_timeouts_total", "counter",
           "Connections closed because a started packet was not completed in time.");
  o.Sample("partial_frame_timeouts_total", "", server.partial_frame_timeouts);
  o.Header("accept_errors_total", "counter", "accept() failures on every listening port.");
  o.Sample("accept_errors_total", "", server.accept_errors);
  o.Header("workers", "gauge", "Peers that acted as workers (network and in-process).");
  o.Sample("workers", "", uint64_t{worker_count});
  o.Header("functions", "gauge", "Functions known to the broker.");
  o.Sample("functions", "",
           uint64_t{function_count == SIZE_MAX ? functions.size() : function_count});

  // One series per listed function, then (with `other`) the aggregate of all the rest.
  static constexpr std::string_view kOther = "other=\"true\"";
  auto per_function = [&](std::string_view name, uint64_t FunctionInfo::*field) {
    for (const FunctionInfo& f : functions) o.Sample(name, Label("function", f.name), f.*field);
    if (other != nullptr) o.Sample(name, kOther, other->*field);
  };
  o.Header("jobs_submitted_total", "counter", "Jobs created by submissions, by function.");
  per_function("jobs_submitted_total", &FunctionInfo::submitted);
  o.Header("jobs_completed_total", "counter", "Jobs ended by WORK_COMPLETE, by function.");
  per_function("jobs_completed_total", &FunctionInfo::completed);
  o.Header("jobs_failed_total", "counter",
           "Jobs ended by WORK_FAIL or WORK_EXCEPTION, or dropped after their last retry.");
  per_function("jobs_failed_total", &FunctionInfo::failed);
  o.Header("jobs_queued", "gauge", "Jobs waiting for a worker, by function and priority.");
  static constexpr std::string_view kPriorities[] = {"high", "normal", "low"};
  for (const FunctionInfo& f : functions) {
    for (size_t p = 0; p < f.queued.size(); ++p) {
      o.Sample("jobs_queued", Label("function", f.name) + "," + Label("priority", kPriorities[p]),
               f.queued[p]);
    }
  }
  if (other != nullptr) {
    for (size_t p = 0; p < other->queued.size(); ++p) {
      o.Sample("jobs_queued", std::string(kOther) + "," + Label("priority", kPriorities[p]),
               other->queued[p]);
    }
  }
  o.Header("jobs_running", "gauge", "Jobs assigned to a worker, by function.");
  per_function("jobs_running", &FunctionInfo::running);
  o.Header("function_workers", "gauge", "Workers registered for the function.");
  for (const FunctionInfo& f : functions) {
    o.Sample("function_workers", Label("function", f.name), uint64_t{f.workers});
  }
  if (other != nullptr) o.Sample("function_workers", kOther, uint64_t{other->workers});

  const storage::StoreStats& st = server.store;
  const std::string store = Label("store", server.store_type);
  o.Header("store_commits_total", "counter", "Durable store transactions (group commits).");
  o.Sample("store_commits_total", store, st.commits);
  o.Header("store_commit_failures_total", "counter", "Durable store transactions rolled back.");
  o.Sample("store_commit_failures_total", store, st.failed_commits);
  o.Header("store_pending_adds", "gauge", "Background jobs waiting for their commit.");
  o.Sample("store_pending_adds", store, st.pending_adds);
  o.Header("store_commit_seconds", "histogram", "Time of one durable store transaction.");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < storage::kCommitLatencyBoundsUs.size(); ++i) {
    cumulative += st.latency_buckets[i];
    o.Sample("store_commit_seconds_bucket",
             store + "," + Label("le", Seconds(storage::kCommitLatencyBoundsUs[i])), cumulative);
  }
  cumulative += st.latency_buckets.back();
  o.Sample("store_commit_seconds_bucket", store + "," + Label("le", "+Inf"), cumulative);
  o.Sample("store_commit_seconds_sum", store, Seconds(static_cast<int64_t>(st.latency_sum_us)));
  o.Sample("store_commit_seconds_count", store, cumulative);

  if (!server.acl_denials.empty()) {
    o.Header("acl_denials_total", "counter",
             "Requests refused by access control, by permission kind (doc/acl.md).");
    for (const auto& [kind, count] : server.acl_denials) {
      o.Sample("acl_denials_total", Label("permission", kind), count);
    }
  }

  o.Header("jenkins_masters", "gauge", "Registered Jenkins masters.");
  o.Sample("jenkins_masters", "", uint64_t{masters.size()});
  o.Header("jenkins_master_up", "gauge", "1 while the master is HEALTHY, else 0.");
  for (const auto& m : masters) {
    o.Sample("jenkins_master_up", Label("master", m.name), uint64_t{m.health == "HEALTHY"});
  }
  o.Header("jenkins_master_health", "gauge", "1 for the master's current health state.");
  static constexpr std::string_view kHealth[] = {"HEALTHY", "SUSPECT", "DOWN"};
  for (const auto& m : masters) {
    for (std::string_view h : kHealth) {
      o.Sample("jenkins_master_health", Label("master", m.name) + "," + Label("state", h),
               uint64_t{m.health == h});
    }
  }
  o.Header("jenkins_requests_total", "counter", "HTTP requests sent to the master.");
  for (const auto& m : masters) o.Sample("jenkins_requests_total", Label("master", m.name), m.requests);
  o.Header("jenkins_request_errors_total", "counter",
           "Requests to the master that failed (transport errors and 5xx).");
  for (const auto& m : masters) {
    o.Sample("jenkins_request_errors_total", Label("master", m.name), m.request_errors);
  }
  o.Header("jenkins_dispatches_total", "counter", "Jobs claimed for the master's executors.");
  for (const auto& m : masters) {
    o.Sample("jenkins_dispatches_total", Label("master", m.name), m.dispatches);
  }
  o.Header("jenkins_requeues_total", "counter", "Jobs the adapter put back into the queue.");
  for (const auto& m : masters) o.Sample("jenkins_requeues_total", Label("master", m.name), m.requeues);
  // The summary's counts (jenkins/summary.h), as in `jenkins list` and /api/jenkins.
  o.Header("jenkins_executors", "gauge",
           "Executors of the master: busy, idle (online), offline (idle on an offline node).");
  for (const auto& m : masters) {
    const std::string master = Label("master", m.name);
    const std::pair<const char*, int> states[] = {
        {"busy", m.executors.busy}, {"idle", m.executors.idle}, {"offline", m.executors.offline}};
    for (const auto& [state, count] : states) {
      o.Sample("jenkins_executors", master + "," + Label("state", state),
               static_cast<uint64_t>(count));
    }
  }
  o.Header("jenkins_builds_in_flight", "gauge", "Gearman jobs the master's adapter is handling.");
  for (const auto& m : masters) {
    o.Sample("jenkins_builds_in_flight", Label("master", m.name), uint64_t{m.builds.size()});
  }
  o.Header("jenkins_last_poll_age_seconds", "gauge",
           "Seconds since the last successful poll of the master; -1 if never.");
  for (const auto& m : masters) {
    o.SampleDouble("jenkins_last_poll_age_seconds", Label("master", m.name),
                   m.last_poll_age_ms < 0 ? -1.0 : static_cast<double>(m.last_poll_age_ms) / 1000.0);
  }
  return o.Take();
}

namespace {

// Ranks the functions kReplySliceEntries per slice (resumed by name), producing nothing, then
// writes the whole text at once: it has at most --metrics-max-functions function series.
class MetricsStream final : public ReplyProducer {
 public:
  MetricsStream(const broker::Broker& broker, size_t max_functions, ServerInfo server,
                size_t worker_count, std::vector<jenkins::MasterSummary> masters)
      : broker_(broker),
        top_(max_functions),
        server_(std::move(server)),
        worker_count_(worker_count),
        masters_(std::move(masters)) {}

  bool Produce(std::string* out, size_t budget) override {
    (void)budget;
    const broker::Function* fn =
        last_ ? broker_.FunctionAfter(*last_) : broker_.FunctionAfter("", /*inclusive=*/true);
    const broker::Function* ranked = nullptr;
    for (size_t i = 0; fn != nullptr && i < kReplySliceEntries; ++i) {
      top_.Add(*fn);
      ranked = fn;
      fn = broker_.FunctionAfter(fn->name());
    }
    if (fn != nullptr) {
      if (ranked != nullptr) last_ = std::string(ranked->name());
      return false;
    }
    FunctionInfo other;
    const std::vector<FunctionInfo> top = top_.Take(broker_.retired(), &other);
    out->append(FormatMetrics(server_, top, worker_count_, masters_, &other, top_.seen()));
    return true;
  }

 private:
  const broker::Broker& broker_;
  TopFunctions top_;
  const ServerInfo server_;
  const size_t worker_count_;
  const std::vector<jenkins::MasterSummary> masters_;
  std::optional<std::string> last_;  // the last name ranked
};

}  // namespace

std::unique_ptr<ReplyProducer> StreamMetrics(const broker::Broker& broker, size_t max_functions,
                                             ServerInfo server, size_t worker_count,
                                             std::vector<jenkins::MasterSummary> masters) {
  return std::make_unique<MetricsStream>(broker, max_functions, std::move(server), worker_count,
                                         std::move(masters));
}

}  // namespace roundhouse::server::http
