// --record output: one `HANDLE<TAB>UNIQUE\n` line per job, handed to the kernel at the end of
// every loop turn so that a crash test can compare what was acknowledged (or received) with
// what a restarted server still has. Each loop thread has its own RecordFile over one shared
// O_APPEND descriptor; a turn's lines go out in one write(2), so threads never interleave
// inside a line.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace roundhouse::loadgen {

class RecordFile {
 public:
  // Borrows `fd` (owned by the caller, open for appending) for this object's lifetime.
  explicit RecordFile(int fd) : fd_(fd) {}

  // Buffers one line. Backslash, tab and newline in either field are escaped (\\, \t, \n).
  void Add(std::string_view handle, std::string_view unique);
  // Writes the buffered lines; an error is reported once and the lines are dropped.
  [[nodiscard]] Status Flush();

 private:
  void AppendEscaped(std::string_view field);

  int fd_;
  std::string pending_;
};

}  // namespace roundhouse::loadgen
