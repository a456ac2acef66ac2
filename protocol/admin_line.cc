// Admin text lines: tokenising (doc/protocol.md §4.1), reply encodings (§4.2) and gearmand's
// lenient decimal parsing.
#include "protocol/admin_line.h"

#include <limits>

namespace roundhouse::protocol {
namespace {

constexpr bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// C-locale isspace(), as atoi() skips.
constexpr bool IsCSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Bytes an ERR text carries as they are: printable ASCII except the space (written '+') and the
// two bytes the '+' convention needs escaped ('%', '+'). Punctuation such as : ' / , = stays
// readable (doc/protocol.md §4.2).
constexpr bool IsVerbatim(char c) {
  return c > ' ' && c < 0x7f && c != '%' && c != '+';
}

// gearmand's convention (spaces as '+'), escaping as %XX only what would break the line or the
// convention: control bytes, DEL, non-ASCII, '%' and '+'.
void AppendErrorText(std::string* out, std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : text) {
    if (IsVerbatim(c)) {
      out->push_back(c);
    } else if (c == ' ') {
      out->push_back('+');
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out->push_back('%');
      out->push_back(kHex[byte >> 4]);
      out->push_back(kHex[byte & 0x0f]);
    }
  }
}

}  // namespace

bool Tokenize(std::string_view line, const Limits& limits, std::vector<std::string_view>* tokens) {
  tokens->clear();
  size_t pos = 0;
  // Each turn takes one token starting at `pos` (empty only for the first token, when the line
  // is empty or starts with a space), then skips the run of spaces after it.
  do {
    const size_t space = line.find(' ', pos);
    const size_t end = space == std::string_view::npos ? line.size() : space;
    if (tokens->size() == limits.max_text_tokens) return false;
    tokens->push_back(line.substr(pos, end - pos));
    pos = line.find_first_not_of(' ', end);
  } while (pos != std::string_view::npos);
  return true;
}

void AppendAdminError(std::string* out, std::string_view code, std::string_view text) {
  out->append("ERR ");
  out->append(code);
  if (!text.empty()) {
    out->push_back(' ');
    AppendErrorText(out, text);
  }
  out->append("\r\n");
}

void AppendUnknownCommand(std::string* out, std::string_view tok0) {
  out->append("ERR UNKNOWN_COMMAND Unknown+server+command");
  out->append(tok0);
  out->append("\r\n");
}

void AppendInvalidArguments(std::string* out, std::string_view tok0) {
  out->append("ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+");
  out->append(tok0);
  out->append("\r\n");
}

long long ParseLeadingInt(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && IsCSpace(s[i])) ++i;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    negative = s[i] == '-';
    ++i;
  }
  // Accumulate the magnitude in unsigned arithmetic and saturate one past LLONG_MAX, which is
  // exactly the magnitude of LLONG_MIN.
  constexpr unsigned long long kLimit =
      static_cast<unsigned long long>(std::numeric_limits<long long>::max()) + 1;
  unsigned long long magnitude = 0;
  for (; i < s.size() && IsDigit(s[i]); ++i) {
    const auto digit = static_cast<unsigned long long>(s[i] - '0');
    magnitude = magnitude > (kLimit - digit) / 10 ? kLimit : magnitude * 10 + digit;
  }
  if (negative) {
    return magnitude == kLimit ? std::numeric_limits<long long>::min()
                               : -static_cast<long long>(magnitude);
  }
  return magnitude >= kLimit ? std::numeric_limits<long long>::max()
                             : static_cast<long long>(magnitude);
}

unsigned long long ParseDigitsOrZero(std::string_view s) {
  constexpr unsigned long long kMax = std::numeric_limits<unsigned long long>::max();
  unsigned long long value = 0;
  for (char c : s) {
    if (!IsDigit(c)) return 0;
    const auto digit = static_cast<unsigned long long>(c - '0');
    value = value > (kMax - digit) / 10 ? kMax : value * 10 + digit;
  }
  return value;
}

}  // namespace roundhouse::protocol
