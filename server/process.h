// Process-level start-up steps for main(): daemonizing with a readiness handshake, the pid file,
// dropping privileges, and resource limits. Signals are not handled here (the loop does that
// with libuv).
//
// Thread-safety: call from main() only. Daemonize() forks, so it must run before any thread
// (the storage writer) or libuv loop exists.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace roundhouse::process {

// The daemon's end of the readiness pipe. Owns one file descriptor; movable, not copyable.
// Destroying it without NotifyReady() tells the waiting parent that start-up failed.
class ReadyNotifier {
 public:
  ReadyNotifier() = default;  // not a daemon: NotifyReady() is a no-op
  explicit ReadyNotifier(int fd) : fd_(fd) {}
  ReadyNotifier(ReadyNotifier&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ReadyNotifier& operator=(ReadyNotifier&& other) noexcept;
  ReadyNotifier(const ReadyNotifier&) = delete;
  ReadyNotifier& operator=(const ReadyNotifier&) = delete;
  ~ReadyNotifier();

  // Call once the listeners are bound and replay is done: the original process exits 0, and
  // stdin, stdout and stderr are pointed at /dev/null (so start-up errors printed before this
  // still reach the user's terminal). Idempotent.
  Status NotifyReady();
  bool active() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Step 1 of -d. Forks twice (the daemon is not a session leader, so it never reacquires a
// controlling terminal) and calls setsid(). Returns only in the daemon; the original process
// stays in Daemonize() until the daemon calls NotifyReady() (then it exits 0) or the daemon's
// end of the pipe closes first (it died or gave up: exit 1). The working directory is not
// changed, so relative paths in the configuration (database, log, pid file) keep their meaning.
Result<ReadyNotifier> Daemonize();

// Writes "<pid>\n" to `path` (created 0644, truncated). Errors name the path and the cause.
Status WritePidFile(const std::string& path);
// Removes `path` if it still holds this process's pid (another instance may have replaced it).
// A missing file is not an error.
Status RemovePidFile(const std::string& path);

// -u: switch to `user` (supplementary groups, group, then user). Only when running as root;
// otherwise an error, as in gearmand. Call after binding the listeners.
Status DropPrivileges(const std::string& user);

// -f: sets RLIMIT_NOFILE's soft limit to `n`, raising the hard limit too if needed (which needs
// privilege).
Status RaiseFileLimit(uint64_t n);

// --coredump: raises RLIMIT_CORE's soft limit to its hard limit and marks the process dumpable.
// Call after DropPrivileges(): changing uid clears the dumpable flag.
Status EnableCoreDumps();

}  // namespace roundhouse::process
