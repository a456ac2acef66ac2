// How peer-chosen strings (function names, uniques, client ids) are written into text that has a
// structure of its own: admin listings, Prometheus labels, JSON. A peer may put any bytes in
// these strings (gearmand accepts them, so roundhouse does too); on output they must neither
// break the format (invalid UTF-8 in JSON or metrics) nor forge lines or fields (a `\n` or `\t`
// in an admin `status` line). The rules are documented in doc/protocol.md ("Names in output").
//
// Pure functions, no allocation beyond the output string's growth.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace roundhouse::protocol {

// Length of the valid UTF-8 sequence that starts at `s[0]` (1..4), or 0 if the bytes there are
// not one (truncated, overlong, a surrogate, above U+10FFFF, a stray continuation byte).
// Precondition: !s.empty().
size_t Utf8SequenceLength(std::string_view s);

bool IsValidUtf8(std::string_view s);

// Appends `s` in escaped form: valid UTF-8 characters at or above U+0020 (other than DEL) are
// kept as they are, a backslash becomes `\\`, and every other byte (C0 controls, DEL, bytes that
// are not part of valid UTF-8) becomes `\xHH` (lowercase hex). With `escape_space`, a space
// becomes `\x20` too (fields separated by spaces, as in admin `workers`). The result is valid
// UTF-8 with no control characters, and different inputs give different outputs.
void AppendEscaped(std::string* out, std::string_view s, bool escape_space = false);
std::string Escaped(std::string_view s, bool escape_space = false);

// Appends `s` with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD
// (for JSON strings, whose own escaping then handles quotes and control characters).
void AppendValidUtf8(std::string* out, std::string_view s);

}  // namespace roundhouse::protocol
