// Levelled logging. Levels and names are gearmand's (--verbose). Lines go to a file, stderr or
// nowhere; SIGHUP reopens the file. Every line about one job carries its handle, every line about
// one Jenkins master its name (pass them in the message, e.g. "job H:x:12 ...").
//
// Thread-safety: Log() may be called from any thread (the storage writer thread logs too); the
// configuration calls (Open/Reopen/SetLevel) are made on the loop thread before or between
// callbacks.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace roundhouse::log {

enum class Level { kFatal = 0, kAlert, kCritical, kError, kWarning, kNotice, kInfo, kDebug };

// "ERROR", "INFO", ... as gearmand prints them.
std::string_view LevelName(Level level);
// Case-insensitive parse of a --verbose value; false if unknown.
bool ParseLevel(std::string_view name, Level* out);

// Where lines go: a path, "stderr", or "none".
Status Open(const std::string& target);
// Reopen the same path (SIGHUP). No-op for stderr/none.
Status Reopen();
void SetLevel(Level level);
Level CurrentLevel();
// --syslog: also send every enabled line to syslog(3) (ident "roundhouse", facility LOG_DAEMON),
// mapped to the nearest syslog priority, without our timestamp (syslog adds its own).
void SetSyslog(bool enabled);
inline bool Enabled(Level level) {
  return static_cast<int>(level) <= static_cast<int>(CurrentLevel());
}

// Writes one line: "<ISO-8601 UTC time> <LEVEL> <message>\n". Printf-style formatting.
void Write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace roundhouse::log

#define RH_LOG(level, ...)                                                    \
  do {                                                                        \
    if (::roundhouse::log::Enabled(::roundhouse::log::Level::level)) {        \
      ::roundhouse::log::Write(::roundhouse::log::Level::level, __VA_ARGS__); \
    }                                                                         \
  } while (0)
