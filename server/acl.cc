#include "server/acl.h"

#include <utility>

#include "base/text.h"

namespace roundhouse::acl {
namespace {

// The items of a list value: separated by commas, spaces or tabs; empty items dropped.
std::vector<std::string> SplitList(std::string_view value) {
  std::vector<std::string> items;
  size_t i = 0;
  while (i < value.size()) {
    while (i < value.size() && (value[i] == ',' || value[i] == ' ' || value[i] == '\t')) ++i;
    const size_t start = i;
    while (i < value.size() && value[i] != ',' && value[i] != ' ' && value[i] != '\t') ++i;
    if (i > start) items.emplace_back(value.substr(start, i - start));
  }
  return items;
}

bool IsIdentityName(std::string_view name) {
  for (std::string_view fixed : {kDefault, kLoopbackPlain, kPlain, kLoopbackTls, kTls}) {
    if (name == fixed) return true;
  }
  return name.size() > kCertificatePrefix.size() &&
         name.substr(0, kCertificatePrefix.size()) == kCertificatePrefix;
}

// A pattern ending in an unpaired `\` could never match; refuse it rather than grant nothing.
bool ValidPattern(std::string_view pattern) {
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && ++i == pattern.size()) return false;
  }
  return !pattern.empty();
}

bool MatchesAny(const std::vector<std::string>& patterns, std::string_view function) {
  for (const std::string& p : patterns) {
    if (GlobMatch(p, function)) return true;
  }
  return false;
}

}  // namespace

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kSubmit:
      return "submit";
    case Kind::kRegister:
      return "register";
    case Kind::kAdminRead:
      return "admin_read";
    case Kind::kAdminControl:
      return "admin_control";
    case Kind::kAdminOperator:
      return "admin_operator";
  }
  return "unknown";
}

std::string IdentityOf(bool loopback, bool encrypted, std::string_view verified_cn) {
  if (encrypted && !verified_cn.empty()) {
    std::string identity(kCertificatePrefix);
    identity += verified_cn;
    return identity;
  }
  if (encrypted) return std::string(loopback ? kLoopbackTls : kTls);
  return std::string(loopback ? kLoopbackPlain : kPlain);
}

std::optional<Kind> AdminKindOf(const std::vector<std::string_view>& tok) {
  if (tok.empty()) return std::nullopt;
  const std::string_view cmd = tok[0];
  for (std::string_view c : {"status", "prioritystatus", "workers", "version", "getpid", "show"}) {
    if (EqualsIgnoreCase(cmd, c)) return Kind::kAdminRead;
  }
  for (std::string_view c : {"cancel", "maxqueue", "drop", "create"}) {
    if (EqualsIgnoreCase(cmd, c)) return Kind::kAdminControl;
  }
  if (EqualsIgnoreCase(cmd, "jenkins")) {
    const std::string_view sub = tok.size() >= 2 ? tok[1] : std::string_view();
    if (EqualsIgnoreCase(sub, "list") || EqualsIgnoreCase(sub, "show")) return Kind::kAdminRead;
    return Kind::kAdminOperator;
  }
  if (EqualsIgnoreCase(cmd, "shutdown") || EqualsIgnoreCase(cmd, "verbose")) {
    return Kind::kAdminOperator;
  }
  return std::nullopt;
}

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Greedy match with one backtrack point: the last `*` seen and the text position it was tried
  // at. Each `*` only moves the backtrack point forward, so the work is O(pattern * text).
  size_t p = 0, t = 0;
  size_t star = std::string_view::npos, star_text = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_text = t;
      continue;
    }
    if (p < pattern.size()) {
      const bool escaped = pattern[p] == '\\' && p + 1 < pattern.size();
      const char want = escaped ? pattern[p + 1] : pattern[p];
      if ((!escaped && want == '?') || want == text[t]) {
        p += escaped ? 2 : 1;
        ++t;
        continue;
      }
    }
    if (star == std::string_view::npos) return false;
    p = star + 1;
    t = ++star_text;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool Grant::Allows(Kind kind, std::string_view function) const {
  switch (kind) {
    case Kind::kSubmit:
      return MatchesAny(submit, function);
    case Kind::kRegister:
      return MatchesAny(register_, function);
    case Kind::kAdminRead:
      return admin_read;
    case Kind::kAdminControl:
      return admin_control;
    case Kind::kAdminOperator:
      return admin_operator;
  }
  return false;
}

Result<Table> Table::Parse(const std::vector<SectionText>& sections) {
  Table table;
  for (const SectionText& section : sections) {
    auto fail = [&section](const std::string& what) {
      return Status::Error(section.origin + ": [acl " + section.name + "]: " + what);
    };
    if (!IsIdentityName(section.name)) {
      return fail(
          "unknown identity (expected default, loopback-plain, plain, loopback-tls, tls or "
          "CN=<common name>)");
    }
    Grant grant;
    for (const auto& [key, value] : section.settings) {
      if (key == "submit" || key == "register") {
        std::vector<std::string> patterns = SplitList(value);
        for (const std::string& p : patterns) {
          if (!ValidPattern(p)) return fail(key + ": pattern '" + p + "' ends in a lone '\\'");
        }
        (key == "submit" ? grant.submit : grant.register_) = std::move(patterns);
      } else if (key == "admin") {
        for (const std::string& group : SplitList(value)) {
          if (group == "read") {
            grant.admin_read = true;
          } else if (group == "control") {
            grant.admin_control = true;
          } else if (group == "operator") {
            grant.admin_operator = true;
          } else if (group == "all") {
            grant.admin_read = grant.admin_control = grant.admin_operator = true;
          } else {
            return fail("admin: unknown group '" + group +
                        "' (expected read, control, operator or all)");
          }
        }
      } else {
        return fail("unknown key '" + key + "' (expected submit, register or admin)");
      }
    }
    if (!table.grants_.emplace(section.name, std::move(grant)).second) {
      return fail("identity listed twice");
    }
  }
  return table;
}

const Grant* Table::Find(std::string_view identity) const {
  auto it = grants_.find(identity);
  if (it == grants_.end()) it = grants_.find(kDefault);
  return it == grants_.end() ? nullptr : &it->second;
}

bool Table::Allows(std::string_view identity, Kind kind, std::string_view function) const {
  const Grant* grant = Find(identity);
  return grant != nullptr && grant->Allows(kind, function);
}

bool BearerAuthorized(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() ||
      !EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme) ||
      authorization[kScheme.size()] != ' ') {
    return false;
  }
  std::string_view given = authorization.substr(kScheme.size());
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  // Walk `token` whole whatever `given` holds: the loop's length and its memory accesses depend
  // only on token.size(); the difference accumulates without branching.
  unsigned diff = given.size() == token.size() ? 0u : 1u;
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= g ^ static_cast<unsigned char>(token[i]);
  }
  return diff == 0 && !token.empty();
}

}  // namespace roundhouse::acl
