#include "jenkins/json_document.h"

#include <rapidjson/error/en.h>

#include <string>

namespace roundhouse::jenkins {

size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() - i < n) return 0;
  const auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < lo || b1 > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < 0x80 || b > 0xBF) return 0;
  }
  return n;
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

size_t JsonNestingDepth(std::string_view json, size_t limit) {
  size_t depth = 0;
  size_t deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : json) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > deepest) {
          deepest = depth;
          if (deepest > limit) return deepest;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;  // unbalanced input is the parser's error to report
        break;
      default:
        break;
    }
  }
  return deepest;
}

Status ParseJsonObject(std::string_view json, std::string_view what, rapidjson::Document* doc,
                       JsonParseOptions options) {
  const std::string name(what);
  if (json.empty()) return Status::Error(name + ": empty document");
  if (!IsValidUtf8(json)) return Status::Error(name + ": not valid UTF-8");
  // RapidJSON's memory stream reads a NUL byte as the end of input; valid JSON has none.
  if (json.find('\0') != std::string_view::npos) return Status::Error(name + ": NUL byte in JSON");
  if (JsonNestingDepth(json, options.max_depth) > options.max_depth) {
    return Status::Error(name + ": JSON nested more than " + std::to_string(options.max_depth) +
                         " levels deep");
  }
  constexpr unsigned kFlags =
      rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;
  if (options.numbers_as_strings) {
    doc->Parse<kFlags | rapidjson::kParseNumbersAsStringsFlag>(json.data(), json.size());
  } else {
    doc->Parse<kFlags>(json.data(), json.size());
  }
  if (doc->HasParseError()) {
    return Status::Error(name + ": invalid JSON at offset " +
                         std::to_string(doc->GetErrorOffset()) + ": " +
                         rapidjson::GetParseError_En(doc->GetParseError()));
  }
  if (!doc->IsObject()) return Status::Error(name + ": not a JSON object");
  return Status::Ok();
}

const rapidjson::Value* Member(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

}  // namespace roundhouse::jenkins
