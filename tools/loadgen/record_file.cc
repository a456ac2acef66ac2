#include "tools/loadgen/record_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace roundhouse::loadgen {

void RecordFile::AppendEscaped(std::string_view field) {
  for (char c : field) {
    switch (c) {
      case '\\':
        pending_ += "\\\\";
        break;
      case '\t':
        pending_ += "\\t";
        break;
      case '\n':
        pending_ += "\\n";
        break;
      default:
        pending_ += c;
    }
  }
}

void RecordFile::Add(std::string_view handle, std::string_view unique) {
  AppendEscaped(handle);
  pending_ += '\t';
  AppendEscaped(unique);
  pending_ += '\n';
}

Status RecordFile::Flush() {
  size_t done = 0;
  while (done < pending_.size()) {
    const ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      pending_.clear();
      return Status::Error(std::string("record file: ") + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  pending_.clear();
  return Status::Ok();
}

}  // namespace roundhouse::loadgen
