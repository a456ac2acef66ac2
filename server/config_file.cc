// SplitConfigText: the lexical half of config-file handling (format detection, tokens, `key =
// value` lines, `[jenkins NAME]` and `[acl NAME]` sections). Option names and values are checked
// by config.cc; ACL sections by server/acl.cc.
#include <map>
#include <string>
#include <string_view>

#include "server/config.h"

namespace roundhouse {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool HasSpace(std::string_view s) {
  for (char c : s) {
    if (IsSpace(c)) return true;
  }
  return false;
}

// Calls fn(line_number, line) for each line; the last line need not end in '\n'.
template <typename Fn>
Status ForEachLine(std::string_view text, Fn fn) {
  int number = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    Status st = fn(++number, line);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

bool IsSignificant(std::string_view line) {
  line = Trim(line);
  return !line.empty() && line.front() != '#';
}

Status SplitTokens(std::string_view text, ConfigText* out) {
  return ForEachLine(text, [out](int number, std::string_view line) {
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && IsSpace(line[i])) ++i;
      if (i == line.size() || line[i] == '#') break;
      size_t start = i;
      while (i < line.size() && !IsSpace(line[i])) ++i;
      out->tokens.push_back({std::string(line.substr(start, i - start)), number});
    }
    return Status::Ok();
  });
}

Status SplitEntries(std::string_view text, const std::string& file_name, ConfigText* out) {
  // The open section's settings and its header as written, for messages; null outside sections.
  std::map<std::string, std::string>* section = nullptr;
  std::string section_title;
  return ForEachLine(text, [&](int number, std::string_view raw) -> Status {
    auto fail = [&](const std::string& what) {
      return Status::Error(file_name + ":" + std::to_string(number) + ": " + what);
    };
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#') return Status::Ok();

    if (line.front() == '[') {
      if (line.back() != ']') return fail("section header must end with ']'");
      std::string_view inner = Trim(line.substr(1, line.size() - 2));
      size_t space = inner.find_first_of(" \t");
      std::string_view kind = inner.substr(0, space);
      std::string_view name =
          space == std::string_view::npos ? std::string_view() : Trim(inner.substr(space));
      const std::string origin = file_name + ":" + std::to_string(number);
      section_title = "[" + std::string(kind) + " " + std::string(name) + "]";
      if (kind == "acl") {
        // A certificate's common name may contain spaces, so an identity may too.
        if (name.empty())
          return fail("[acl NAME] needs an identity (default, loopback-plain, ...)");
        out->acl.push_back({std::string(name), {}, origin});
        section = &out->acl.back().settings;
        return Status::Ok();
      }
      if (kind != "jenkins") {
        return fail("unknown section '[" + std::string(inner) +
                    "]' (only [jenkins NAME] and [acl NAME] exist)");
      }
      if (name.empty()) return fail("[jenkins NAME] needs a master name");
      if (HasSpace(name)) {
        return fail("jenkins master name '" + std::string(name) + "' contains whitespace");
      }
      out->jenkins.push_back({std::string(name), {}, origin});
      section = &out->jenkins.back().settings;
      return Status::Ok();
    }

    size_t eq = line.find('=');
    std::string_view key = Trim(line.substr(0, eq));
    if (key.empty()) return fail("missing key before '='");
    if (HasSpace(key)) {
      return fail("invalid key '" + std::string(key) + "' (expected 'key = value')");
    }
    bool has_value = eq != std::string_view::npos;
    std::string_view value = has_value ? Trim(line.substr(eq + 1)) : std::string_view();

    if (section != nullptr) {
      if (!has_value) {
        return fail("expected 'key = value' in " + section_title + ", got '" + std::string(key) +
                    "'");
      }
      auto [it, inserted] = section->emplace(std::string(key), std::string(value));
      if (!inserted) return fail("duplicate key '" + std::string(key) + "' in " + section_title);
      return Status::Ok();
    }
    out->entries.push_back({std::string(key), std::string(value), has_value, number});
    return Status::Ok();
  });
}

}  // namespace

Result<ConfigText> SplitConfigText(std::string_view text, const std::string& file_name) {
  ConfigText out;
  bool first_found = false;
  Status st = ForEachLine(text, [&](int, std::string_view line) {
    if (!first_found && IsSignificant(line)) {
      first_found = true;
      out.option_tokens = Trim(line).front() == '-';
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  st = out.option_tokens ? SplitTokens(text, &out) : SplitEntries(text, file_name, &out);
  if (!st.ok()) return st;
  return out;
}

}  // namespace roundhouse
