// Admin text protocol: tokenising a command line and encoding replies (doc/protocol.md §4).
// Pure functions over byte strings.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/limits.h"

namespace roundhouse::protocol {

// Splits `line` (without its line ending) on spaces only; runs of spaces are one separator,
// trailing spaces are ignored, a leading space yields an empty first token. Tabs are ordinary
// bytes. Returns false when there are more than limits.max_text_tokens tokens (close the
// connection). Views borrow from `line`.
bool Tokenize(std::string_view line, const Limits& limits, std::vector<std::string_view>* tokens);

// Appends `ERR <code> <text>\r\n`, the text in gearmand's convention with spaces as '+'.
// Printable ASCII stays readable (`:`, `'`, `/`, ... verbatim); only control bytes, DEL,
// non-ASCII bytes, '%' and '+' become %XX, so the reply stays one line whatever the text holds.
// Empty text: `ERR <code>\r\n`.
void AppendAdminError(std::string* out, std::string_view code, std::string_view text);

// The unknown-command reply: `ERR UNKNOWN_COMMAND Unknown+server+command<tok0>\r\n`, tok0 raw.
void AppendUnknownCommand(std::string* out, std::string_view tok0);

// `ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+<tok0>\r\n`.
void AppendInvalidArguments(std::string* out, std::string_view tok0);

// Decimal helpers with gearmand's lenient semantics.
// atoi-like: leading digits (optional sign), anything else stops; no digits → 0; clamps on
// overflow.
long long ParseLeadingInt(std::string_view s);
// Unsigned decimal; a non-digit anywhere → 0 (WORK_STATUS numerator/denominator rule).
unsigned long long ParseDigitsOrZero(std::string_view s);

}  // namespace roundhouse::protocol
