#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <mutex>
#include <string>

#include "base/text.h"

namespace roundhouse::log {
namespace {

constexpr std::array<std::string_view, 8> kLevelNames = {"FATAL",   "ALERT",  "CRITICAL", "ERROR",
                                                         "WARNING", "NOTICE", "INFO",     "DEBUG"};

constexpr int kNoFd = -1;

// Sink state. `fd` and `path` are guarded by `mu` because Write() runs on any thread while
// Open()/Reopen() swap the descriptor. The level and the syslog switch are read on every call,
// so they are atomics instead.
struct Sink {
  std::mutex mu;
  int fd = STDERR_FILENO;  // kNoFd for "none"
  std::string path;        // empty unless the target is a file; then `fd` is ours to close
};

Sink& TheSink() {
  static Sink* sink = new Sink();  // never destroyed: threads may log during exit
  return *sink;
}

std::atomic<int> g_level{static_cast<int>(Level::kError)};
std::atomic<bool> g_syslog{false};

Status OpenFile(const std::string& path, int* fd) {
  *fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (*fd < 0) {
    return Status::Error("cannot open log file '" + path + "': " + strerror(errno));
  }
  return Status::Ok();
}

// "2024-05-01T12:34:56.789Z"
void AppendTimestamp(std::string* out) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char buf[40];
  int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", utc.tm_year + 1900,
                   utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                   ts.tv_nsec / 1'000'000);
  out->append(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

// Messages carry peer-controlled bytes (function names, uniques). Control characters are written
// as \xNN so that one call always yields exactly one line and a peer cannot forge log lines.
void AppendSanitized(std::string_view msg, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : msg) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      out->append("\\x");
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 0xf]);
    } else {
      out->push_back(c);
    }
  }
}

int SyslogPriority(Level level) {
  switch (level) {
    case Level::kFatal:
      return LOG_EMERG;
    case Level::kAlert:
      return LOG_ALERT;
    case Level::kCritical:
      return LOG_CRIT;
    case Level::kError:
      return LOG_ERR;
    case Level::kWarning:
      return LOG_WARNING;
    case Level::kNotice:
      return LOG_NOTICE;
    case Level::kInfo:
      return LOG_INFO;
    case Level::kDebug:
      return LOG_DEBUG;
  }
  return LOG_ERR;
}

// One write() per line; retried only if interrupted or short (a pipe or full disk), so lines
// from different threads never interleave within a line.
void WriteLine(int fd, const std::string& line) {
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = write(fd, line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report a logging failure
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace

std::string_view LevelName(Level level) {
  auto i = static_cast<size_t>(level);
  return i < kLevelNames.size() ? kLevelNames[i] : std::string_view("UNKNOWN");
}

bool ParseLevel(std::string_view name, Level* out) {
  for (size_t i = 0; i < kLevelNames.size(); ++i) {
    if (EqualsIgnoreCase(name, kLevelNames[i])) {
      *out = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

Status Open(const std::string& target) {
  int fd = kNoFd;
  std::string path;
  if (target == "stderr") {
    fd = STDERR_FILENO;
  } else if (target == "none") {
    fd = kNoFd;
  } else if (target.empty()) {
    return Status::Error("log file name is empty");
  } else {
    Status st = OpenFile(target, &fd);
    if (!st.ok()) return st;
    path = target;
  }
  Sink& sink = TheSink();
  int old = kNoFd;
  {
    std::lock_guard<std::mutex> lock(sink.mu);
    if (!sink.path.empty()) old = sink.fd;
    sink.fd = fd;
    sink.path = std::move(path);
  }
  if (old != kNoFd) close(old);
  return Status::Ok();
}

Status Reopen() {
  Sink& sink = TheSink();
  std::string path;
  {
    std::lock_guard<std::mutex> lock(sink.mu);
    path = sink.path;
  }
  if (path.empty()) return Status::Ok();
  int fd = kNoFd;
  Status st = OpenFile(path, &fd);
  if (!st.ok()) return st;  // keep writing to the old descriptor
  int old;
  {
    std::lock_guard<std::mutex> lock(sink.mu);
    old = sink.fd;  // a file descriptor: `path` was set, and only Open() changes it
    sink.fd = fd;
  }
  close(old);
  return Status::Ok();
}

void SetLevel(Level level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

Level CurrentLevel() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

void SetSyslog(bool enabled) {
  if (enabled && !g_syslog.load()) openlog("roundhouse", LOG_PID | LOG_NDELAY, LOG_DAEMON);
  g_syslog.store(enabled);
}

void Write(Level level, const char* fmt, ...) {
  char stack_buf[1024];
  std::string message;
  va_list ap;
  va_start(ap, fmt);
  // clang-tidy 14 reports `ap` uninitialized here when it analyses several files in one run.
  int n = vsnprintf(stack_buf, sizeof stack_buf, fmt, ap);  // NOLINT(clang-analyzer-valist.*)
  va_end(ap);
  if (n < 0) {
    message = "(unformattable log message)";
  } else if (static_cast<size_t>(n) < sizeof stack_buf) {
    message.assign(stack_buf, static_cast<size_t>(n));
  } else {
    message.resize(static_cast<size_t>(n));
    va_start(ap, fmt);  // a second traversal of the same arguments
    vsnprintf(message.data(), message.size() + 1, fmt, ap);
    va_end(ap);
  }

  std::string body;
  body.reserve(message.size());
  AppendSanitized(message, &body);
  if (g_syslog.load(std::memory_order_relaxed)) {
    syslog(SyslogPriority(level), "%s", body.c_str());
  }

  std::string line;
  line.reserve(body.size() + 40);
  AppendTimestamp(&line);
  line.push_back(' ');
  line.append(LevelName(level));
  line.push_back(' ');
  line.append(body);
  line.push_back('\n');

  Sink& sink = TheSink();
  std::lock_guard<std::mutex> lock(sink.mu);
  if (sink.fd != kNoFd) WriteLine(sink.fd, line);
}

}  // namespace roundhouse::log
