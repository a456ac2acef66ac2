// The one way the Jenkins layer turns untrusted JSON into a RapidJSON document: every reply of a
// Jenkins master (R1-R11, the W0 crumb), every Gearman client's build arguments, and every
// journal entry read back from the database go through ParseJsonObject. See doc/jenkins.md
// ("Replies from a master are untrusted").
//
// Bounds, in the order they are checked, each O(size of the input) with no recursion:
//   - the input is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates) with no NUL;
//   - arrays and objects nest at most kMaxJsonDepth deep (a pre-scan, before any allocation);
//   - the parse itself is RapidJSON's iterative parser (heap stack, never the C stack).
// The document's memory is then proportional to the input size, which the HTTP client caps per
// request (see RestClient, ReplyKind). A RapidJSON Document (pool allocator) is destroyed without
// recursion, so a document at the depth limit is also freed safely.
//
// Pure: no I/O, no logging. Thread-safety: free functions on values.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "base/status.h"

namespace roundhouse::jenkins {

// Deepest nesting of arrays/objects accepted in any JSON the Jenkins layer parses. An R2 job
// table with the deepest folder_depth the settings allow needs about 2 levels per folder plus 8.
inline constexpr size_t kMaxJsonDepth = 200;

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when it is not well formed. Precondition: i < size.
size_t Utf8SequenceLength(std::string_view s, size_t i);
bool IsValidUtf8(std::string_view s);

// Deepest array/object nesting of `json`, scanning at most until it exceeds `limit` (then returns
// limit + 1). Brackets inside strings do not count. Works on any bytes (no validity assumed).
size_t JsonNestingDepth(std::string_view json, size_t limit);

struct JsonParseOptions {
  bool numbers_as_strings = false;  // keep numbers as their JSON text (build arguments, §1.4)
  size_t max_depth = kMaxJsonDepth;
};

// Parses `json` into `doc`, which must then be an object. On error the Status names `what`
// (e.g. "crumb") and the cause (empty, not UTF-8, NUL byte, nested too deeply, RapidJSON's error
// with its offset, not an object); `doc` is then unspecified.
[[nodiscard]] Status ParseJsonObject(std::string_view json, std::string_view what,
                                     rapidjson::Document* doc, JsonParseOptions options = {});

// The member `name` of `obj`, or nullptr when `obj` is not an object or has no such member.
const rapidjson::Value* Member(const rapidjson::Value& obj, const char* name);
// The text of a string value. Precondition: v.IsString().
inline std::string Text(const rapidjson::Value& v) {
  return std::string(v.GetString(), v.GetStringLength());
}

// The member `name` of `obj` as a T (std::string, bool, int, int64_t), or nullopt when `obj` is
// not an object, has no such member, or it is of another JSON type (null included). The one
// reader of an optional member: a peer's JSON never decides what type we read.
template <typename T>
std::optional<T> OptionalMember(const rapidjson::Value& obj, const char* name) {
  const rapidjson::Value* v = Member(obj, name);
  if (v == nullptr) return std::nullopt;
  if constexpr (std::is_same_v<T, std::string>) {
    if (v->IsString()) return Text(*v);
  } else if constexpr (std::is_same_v<T, bool>) {
    if (v->IsBool()) return v->GetBool();
  } else if constexpr (std::is_same_v<T, int>) {
    if (v->IsInt()) return v->GetInt();
  } else {
    static_assert(std::is_same_v<T, int64_t>, "OptionalMember: string, bool, int or int64_t");
    if (v->IsInt64()) return v->GetInt64();
  }
  return std::nullopt;
}
// OptionalMember, or `fallback` when it is absent or of another type.
template <typename T>
T MemberOr(const rapidjson::Value& obj, const char* name, T fallback) {
  std::optional<T> v = OptionalMember<T>(obj, name);
  return v ? std::move(*v) : std::move(fallback);
}

}  // namespace roundhouse::jenkins
