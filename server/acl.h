// Access control (doc/acl.md): which identity may submit jobs for which functions, register as a
// worker for which functions, and use which groups of admin commands. The grant table is built
// once from the config file's `[acl NAME]` sections and never changes while the server runs (it
// is read at start; there is no config reload). Pure: no I/O, no clock, no logging, so it is
// unit-tested directly; enforcement (replies, log, counters) is server/access.h.
//
// Identities are strings the connection supplies (Connection::identity(), made by IdentityOf):
//   "loopback-plain"  a plain-text connection from a loopback address
//   "plain"           any other plain-text connection
//   "loopback-tls"    a TLS connection from a loopback address without a verified certificate
//   "tls"             any other TLS connection without a verified certificate
//   "CN=<cn>"         a TLS connection whose client certificate was verified (subject CN)
// An identity with no section of its own gets the `[acl default]` section's grants; without a
// default section it may do nothing. A section replaces the default, it does not add to it.
//
// Thread-safety: immutable after Parse; safe to share.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace roundhouse::acl {

// What a request needs. Submit and register are granted per function (glob patterns); the admin
// kinds per command group (AdminKindOf).
enum class Kind : uint8_t { kSubmit, kRegister, kAdminRead, kAdminControl, kAdminOperator };
inline constexpr size_t kKindCount = 5;
inline constexpr std::array<Kind, kKindCount> kAllKinds = {
    Kind::kSubmit, Kind::kRegister, Kind::kAdminRead, Kind::kAdminControl, Kind::kAdminOperator};

// "submit", "register", "admin_read", "admin_control", "admin_operator" (log lines and the
// permission label of roundhouse_acl_denials_total).
std::string_view KindName(Kind kind);

inline constexpr std::string_view kLoopbackPlain = "loopback-plain";
inline constexpr std::string_view kPlain = "plain";
inline constexpr std::string_view kDefault = "default";
inline constexpr std::string_view kLoopbackTls = "loopback-tls";
inline constexpr std::string_view kTls = "tls";
inline constexpr std::string_view kCertificatePrefix = "CN=";

// The identity of a connection: "CN=<verified_cn>" when a client certificate was verified
// (`verified_cn` non-empty; only possible when `encrypted`), else by transport and address.
std::string IdentityOf(bool loopback, bool encrypted, std::string_view verified_cn);

// The admin group of a tokenized admin line (tok[0] is the command, any case):
//   read:     status, prioritystatus, workers, version, getpid, show ..., jenkins list|show
//   control:  cancel, maxqueue, drop, create
//   operator: shutdown, verbose, jenkins add|remove (and any other `jenkins` subcommand)
// nullopt for an empty line or an unknown command (answered UNKNOWN_COMMAND, which changes and
// reveals nothing, so it is not checked).
std::optional<Kind> AdminKindOf(const std::vector<std::string_view>& tok);

// Shell-style match of a whole function name: `*` any run of bytes (also empty, also ':'), `?`
// one byte, `\` makes the next byte literal; every other byte matches itself (case-sensitive, as
// function names are). O(pattern * text) at worst.
bool GlobMatch(std::string_view pattern, std::string_view text);

// One identity's grants.
struct Grant {
  std::vector<std::string> submit;     // patterns (GlobMatch); empty = none
  std::vector<std::string> register_;  // patterns
  bool admin_read = false, admin_control = false, admin_operator = false;

  // `function` is the function name for kSubmit / kRegister and ignored for the admin kinds.
  bool Allows(Kind kind, std::string_view function) const;
};

// One `[acl NAME]` section as the config file gives it (server/config_file.cc).
struct SectionText {
  std::string name;
  std::map<std::string, std::string> settings;
  std::string origin;  // "file:line" of the header, for error messages
};

class Table {
 public:
  // Keys of a section: `submit = PATTERNS`, `register = PATTERNS`, `admin = GROUPS`; patterns and
  // groups are separated by commas and/or spaces; groups are read, control, operator or all.
  // NAME is default, loopback-plain, plain, loopback-tls, tls or CN=<common name>. Errors name
  // file and line.
  static Result<Table> Parse(const std::vector<SectionText>& sections);

  // The grant that applies to `identity`: its own section, else default's, else null.
  const Grant* Find(std::string_view identity) const;
  bool Allows(std::string_view identity, Kind kind, std::string_view function) const;

  size_t size() const { return grants_.size(); }

 private:
  std::map<std::string, Grant, std::less<>> grants_;
};

// The status API's bearer token check: true when `authorization` (an Authorization header value)
// is `Bearer <token>` (scheme in any case, one or more spaces) and <token> equals `token`. The
// comparison takes the same time for every value of the same length as `token`, and a length
// mismatch is not found out any sooner, so timing tells nothing of the token. `token` non-empty.
bool BearerAuthorized(std::string_view authorization, std::string_view token);

}  // namespace roundhouse::acl
