#include "protocol/printable.h"

namespace roundhouse::protocol {
namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool Continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

size_t Utf8SequenceLength(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  const unsigned char c = p[0];
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;  // continuation byte, or an overlong 2-byte lead (C0, C1)
  if (c < 0xE0) return n >= 2 && Continuation(p[1]) ? 2 : 0;
  if (c < 0xF0) {
    if (n < 3 || !Continuation(p[1]) || !Continuation(p[2])) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;   // overlong
    if (c == 0xED && p[1] >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c < 0xF5) {
    if (n < 4 || !Continuation(p[1]) || !Continuation(p[2]) || !Continuation(p[3])) return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;   // overlong
    if (c == 0xF4 && p[1] >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t len = Utf8SequenceLength(s.substr(i));
    if (len == 0) return false;
    i += len;
  }
  return true;
}

void AppendEscaped(std::string* out, std::string_view s, bool escape_space) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 1;
    bool escape;
    if (c < 0x80) {
      escape = c < 0x20 || c == 0x7F || (escape_space && c == ' ');
      if (c == '\\') {
        out->append("\\\\");
        ++i;
        continue;
      }
    } else {
      len = Utf8SequenceLength(s.substr(i));
      escape = len == 0;
      if (escape) len = 1;
    }
    if (escape) {
      const char hex[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xF]};
      out->append(hex, 4);
    } else {
      out->append(s.data() + i, len);
    }
    i += len;
  }
}

std::string Escaped(std::string_view s, bool escape_space) {
  std::string out;
  out.reserve(s.size());
  AppendEscaped(&out, s, escape_space);
  return out;
}

void AppendValidUtf8(std::string* out, std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      out->push_back(s[i]);
      ++i;
      continue;
    }
    const size_t len = Utf8SequenceLength(s.substr(i));
    if (len == 0) {
      out->append(kReplacement);
      ++i;
    } else {
      out->append(s.data() + i, len);
      i += len;
    }
  }
}

}  // namespace roundhouse::protocol
