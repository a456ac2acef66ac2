#include "server/process.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace roundhouse::process {
namespace {

constexpr char kReadyByte = 'R';

std::string Errno(const std::string& what) { return what + ": " + strerror(errno); }

void CloseQuietly(int fd) {
  if (fd >= 0) close(fd);
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

// The original process: wait for the daemon's verdict, then leave without running destructors
// or atexit handlers (they belong to the daemon now).
[[noreturn]] void WaitForDaemon(int read_fd, pid_t middle) {
  char byte = 0;
  ssize_t n;
  do {
    n = read(read_fd, &byte, 1);
  } while (n < 0 && errno == EINTR);
  int status = 0;
  while (waitpid(middle, &status, 0) < 0 && errno == EINTR) {
  }
  if (n == 1 && byte == kReadyByte) _exit(0);
  static constexpr char kMsg[] = "roundhouse: the background process did not finish start-up\n";
  ssize_t ignored = write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
  (void)ignored;
  _exit(1);
}

}  // namespace

ReadyNotifier& ReadyNotifier::operator=(ReadyNotifier&& other) noexcept {
  if (this != &other) {
    CloseQuietly(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

ReadyNotifier::~ReadyNotifier() { CloseQuietly(fd_); }

Status ReadyNotifier::NotifyReady() {
  if (fd_ < 0) return Status::Ok();
  ssize_t n;
  do {
    n = write(fd_, &kReadyByte, 1);
  } while (n < 0 && errno == EINTR);
  int write_errno = errno;
  close(fd_);
  fd_ = -1;
  if (n != 1) {
    errno = write_errno;
    return Status::Error(Errno("cannot signal readiness to the starting process"));
  }
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) return Status::Error(Errno("cannot open /dev/null"));
  for (int std_fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) dup2(null_fd, std_fd);
  if (null_fd > STDERR_FILENO) close(null_fd);
  return Status::Ok();
}

Result<ReadyNotifier> Daemonize() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Status::Error(Errno("daemon: pipe"));
  fflush(nullptr);  // unwritten stdio output would otherwise be written by several processes
  pid_t middle = fork();
  if (middle < 0) {
    Status st = Status::Error(Errno("daemon: fork"));
    close(fds[0]);
    close(fds[1]);
    return st;
  }
  if (middle > 0) {
    close(fds[1]);
    WaitForDaemon(fds[0], middle);
  }

  // The middle process: a new session, then a child that is not its leader.
  close(fds[0]);
  if (setsid() < 0) _exit(1);
  pid_t daemon = fork();
  if (daemon < 0) _exit(1);
  if (daemon > 0) _exit(0);
  return ReadyNotifier(fds[1]);
}

Status WritePidFile(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Error(Errno("cannot write pid file '" + path + "'"));
  bool ok = WriteAll(fd, std::to_string(getpid()) + "\n");
  int saved = errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    errno = saved;
    return Status::Error(Errno("cannot write pid file '" + path + "'"));
  }
  return Status::Ok();
}

Status RemovePidFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::Error(Errno("cannot read pid file '" + path + "'"));
  }
  char buf[32] = {};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 0) return Status::Error(Errno("cannot read pid file '" + path + "'"));
  if (std::string(buf, static_cast<size_t>(n)) != std::to_string(getpid()) + "\n") {
    return Status::Ok();  // not ours any more
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::Error(Errno("cannot remove pid file '" + path + "'"));
  }
  return Status::Ok();
}

Status DropPrivileges(const std::string& user) {
  if (geteuid() != 0) {
    return Status::Error("-u/--user " + user + " needs roundhouse to be started as root (euid " +
                         std::to_string(geteuid()) + ")");
  }
  long size_hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size_hint > 0 ? static_cast<size_t>(size_hint) : 16384);
  passwd pw{};
  passwd* found = nullptr;
  int rc;
  while ((rc = getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found)) == ERANGE) {
    buf.resize(buf.size() * 2);
  }
  if (rc != 0) {
    errno = rc;
    return Status::Error(Errno("cannot look up user '" + user + "'"));
  }
  if (found == nullptr) return Status::Error("unknown user '" + user + "'");
  if (initgroups(pw.pw_name, pw.pw_gid) != 0) {
    return Status::Error(Errno("cannot set the groups of user '" + user + "'"));
  }
  if (setgid(pw.pw_gid) != 0) {
    return Status::Error(Errno("cannot switch to group " + std::to_string(pw.pw_gid)));
  }
  if (setuid(pw.pw_uid) != 0) return Status::Error(Errno("cannot switch to user '" + user + "'"));
  if (pw.pw_uid != 0 && setuid(0) == 0) {
    return Status::Error("switched to user '" + user + "' but root could be regained; refusing");
  }
  return Status::Ok();
}

Status RaiseFileLimit(uint64_t n) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return Status::Error(Errno("cannot read the file descriptor limit"));
  }
  rl.rlim_cur = static_cast<rlim_t>(n);
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < rl.rlim_cur) rl.rlim_max = rl.rlim_cur;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return Status::Error(Errno("cannot set the file descriptor limit to " + std::to_string(n)));
  }
  return Status::Ok();
}

Status EnableCoreDumps() {
  rlimit rl{};
  if (getrlimit(RLIMIT_CORE, &rl) != 0) return Status::Error(Errno("cannot read RLIMIT_CORE"));
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_CORE, &rl) != 0) return Status::Error(Errno("cannot raise RLIMIT_CORE"));
  if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) {
    return Status::Error(Errno("cannot make the process dumpable"));
  }
  return Status::Ok();
}

}  // namespace roundhouse::process
