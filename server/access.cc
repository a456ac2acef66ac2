#include "server/access.h"

#include <cstdlib>
#include <utility>

#include "base/log.h"
#include "jenkins/master_settings.h"
#include "protocol/printable.h"
#include "server/config.h"
#include "server/connection.h"

namespace roundhouse::server {
namespace {

constexpr int64_t kLogIntervalMs = 1000;
// Log lines and replies show at most this much of a peer-chosen name.
constexpr size_t kMaxSubjectShown = 200;

std::string Shown(std::string_view subject) {
  std::string out = protocol::Escaped(subject.substr(0, kMaxSubjectShown));
  if (subject.size() > kMaxSubjectShown) out += "...";
  return out;
}

std::string_view Verb(acl::Kind kind) {
  switch (kind) {
    case acl::Kind::kSubmit:
      return "submit jobs for function";
    case acl::Kind::kRegister:
      return "register as a worker for function";
    case acl::Kind::kAdminRead:
      return "use read-only admin command";
    case acl::Kind::kAdminControl:
      return "use control admin command";
    case acl::Kind::kAdminOperator:
      return "use operator admin command";
  }
  return "do";
}

}  // namespace

AccessControl::AccessControl(std::shared_ptr<const acl::Table> table, const Clock& clock)
    : table_(std::move(table)), clock_(clock) {}

bool AccessControl::Check(std::string_view identity, std::string_view address, acl::Kind kind,
                          std::string_view subject) {
  if (table_ == nullptr || table_->Allows(identity, kind, subject)) return true;
  const auto index = static_cast<size_t>(kind);
  ++denials_[index];
  LogState& log = log_[index];
  const int64_t now = clock_.MonotonicMs();
  if (log.last_ms != INT64_MIN && now - log.last_ms < kLogIntervalMs) {
    ++log.suppressed;
    return false;
  }
  const uint64_t suppressed = std::exchange(log.suppressed, 0);
  log.last_ms = now;
  const std::string identity_shown = Shown(identity);
  const std::string subject_shown = Shown(subject);
  const std::string kind_name(acl::KindName(kind));
  std::string left_out;
  if (suppressed != 0) {
    left_out = " (" + std::to_string(suppressed) + " more " + kind_name +
               " denials since the last such line not logged)";
  }
  RH_LOG(kWarning, "acl: denied %s to identity=%s address=%.*s: %s%s", kind_name.c_str(),
         identity_shown.c_str(), static_cast<int>(address.size()), address.data(),
         subject_shown.c_str(), left_out.c_str());
  return false;
}

bool Permitted(Connection& conn, acl::Kind kind, std::string_view subject) {
  AccessControl* access = conn.host().access();
  return access == nullptr || access->Check(conn.identity(), conn.Address(), kind, subject);
}

std::string PermissionDeniedText(const Connection& conn, acl::Kind kind, std::string_view subject) {
  std::string text = Shown(conn.identity());
  text += " may not ";
  text += Verb(kind);
  text += ' ';
  text += Shown(subject);
  return text;
}

Result<std::string> LoadStatusToken(const Config& config) {
  if (!config.status_token_file.empty()) {
    Result<std::string> token = jenkins::ReadTokenFile(config.status_token_file);
    if (!token.ok()) return Status::Error("--status-token-file: " + token.status().message());
    return token;
  }
  if (!config.status_token_env.empty()) {
    const char* value = std::getenv(config.status_token_env.c_str());
    std::string_view token = value == nullptr ? std::string_view() : std::string_view(value);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
      token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t' || token.back() == '\n' ||
                              token.back() == '\r')) {
      token.remove_suffix(1);
    }
    if (token.empty()) {
      return Status::Error("--status-token-env: environment variable " +
                           protocol::Escaped(config.status_token_env) + " is unset or empty");
    }
    return std::string(token);
  }
  return std::string();
}

}  // namespace roundhouse::server
