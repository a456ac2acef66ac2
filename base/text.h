// Text helpers every layer shares: ASCII case folding for keywords (admin commands, header names,
// option values) and strict decimal parsing. Pure functions over bytes; no locale is consulted,
// so a byte >= 0x80 is never folded and "İ" never equals "i".
#pragma once

#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace roundhouse {

// ASCII case-insensitive equality: only 'A'..'Z' fold to 'a'..'z'.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// `s` begins with `prefix`, compared as EqualsIgnoreCase does.
bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix);
// A copy of `s` with 'A'..'Z' lowered; every other byte as it is.
std::string ToLowerAscii(std::string_view s);

// Strict decimal: all of `s` is one or more ASCII digits, with one leading '-' allowed only when
// T is signed; no '+', no spaces, no trailing bytes. Leading zeros are accepted. nullopt when the
// text is malformed or the value does not fit T (never a silently clamped or wrapped value).
template <typename T>
std::optional<T> ParseDecimal(std::string_view s) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>, "integers only");
  T value{};
  const char* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, value, 10);
  if (s.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

}  // namespace roundhouse
