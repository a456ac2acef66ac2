// Enforcement of access control on the Gearman port (doc/acl.md): the one check the command
// handlers make before acting, the denial log, and the denial counters /metrics shows. The
// grant table itself is server/acl.h. Also the status API's bearer token, read at start.
//
// Hooks: client_commands.cc (SUBMIT_*), worker_commands.cc (CAN_DO, CAN_DO_TIMEOUT) and
// admin_commands.cc (every known admin command) call Permitted() and, when it says no, answer
// with an error (PermissionDeniedText) and do nothing else. In-process Jenkins executors talk to
// the broker directly and are never checked: they are the server's own (trusted) workers.
//
// Thread-safety: loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/status.h"
#include "server/acl.h"

namespace roundhouse {
struct Config;
}  // namespace roundhouse

namespace roundhouse::server {

class Connection;

class AccessControl {
 public:
  // `table` null: access control is off, Check() allows everything and counts nothing. `clock`
  // (for the log's rate limit) must outlive this object.
  AccessControl(std::shared_ptr<const acl::Table> table, const Clock& clock);
  AccessControl(const AccessControl&) = delete;
  AccessControl& operator=(const AccessControl&) = delete;

  bool enabled() const { return table_ != nullptr; }

  // True when `identity` may do `kind`; `subject` is the function (submit, register) or the
  // admin command, used for the grant (functions) and the log line. A denial is counted, and
  // logged at WARNING with identity and address: at most one line per second per kind, the
  // next line saying how many were left out.
  bool Check(std::string_view identity, std::string_view address, acl::Kind kind,
             std::string_view subject);

  // Denials since start, by kind (acl::kAllKinds order).
  const std::array<uint64_t, acl::kKindCount>& denials() const { return denials_; }

 private:
  struct LogState {
    int64_t last_ms = INT64_MIN;
    uint64_t suppressed = 0;
  };

  const std::shared_ptr<const acl::Table> table_;
  const Clock& clock_;
  std::array<uint64_t, acl::kKindCount> denials_{};
  std::array<LogState, acl::kKindCount> log_{};
};

// The command handlers' check: the host's AccessControl (none: allowed) with the connection's
// identity and address. False: the caller answers PERMISSION_DENIED (PermissionDeniedText) and
// does not act on the request.
bool Permitted(Connection& conn, acl::Kind kind, std::string_view subject);

// "<identity> may not <what> <subject>": the text of the admin `ERR PERMISSION_DENIED` line, and
// after "permission denied: " that of the ERROR packet (code INVALID_FUNCTION_NAME for submit,
// INVALID_WORKER_FUNCTION for register).
std::string PermissionDeniedText(const Connection& conn, acl::Kind kind, std::string_view subject);

// The status API's bearer token from --status-token-file or --status-token-env; empty when
// neither is set. An unreadable, empty or non-regular file, or an unset or empty variable, is
// an error (the server does not start rather than serve without the protection asked for).
Result<std::string> LoadStatusToken(const Config& config);

}  // namespace roundhouse::server
