// server/process.h: pid file, daemon handshake, privileges and limits. Anything that changes
// process-wide state runs in a forked child that reports through its exit status.
#include "server/process.h"

#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "test/unit/server/server_test_util.h"

using Catch::Matchers::Contains;
using roundhouse::testing::TempDir;
namespace process = roundhouse::process;

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `body` in a child process and returns its exit code (-1 if it did not exit normally).
template <typename Fn>
int InChild(Fn body) {
  fflush(nullptr);  // or the child's Daemonize() would write the test's pending output again
  pid_t pid = fork();
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
    }
    _exit(code);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void SilenceStderr() {
  int null_fd = open("/dev/null", O_WRONLY);
  dup2(null_fd, STDERR_FILENO);
  close(null_fd);
}

}  // namespace

TEST_CASE("WritePidFile writes the pid and RemovePidFile removes it", "[process]") {
  TempDir dir;
  std::string path = dir.File("rh.pid");
  REQUIRE(process::WritePidFile(path).ok());
  CHECK(ReadAll(path) == std::to_string(getpid()) + "\n");
  REQUIRE(process::RemovePidFile(path).ok());
  CHECK(access(path.c_str(), F_OK) != 0);
  CHECK(process::RemovePidFile(path).ok());  // already gone
}

TEST_CASE("RemovePidFile leaves a pid file another process has taken over", "[process]") {
  TempDir dir;
  std::string path = dir.Write("rh.pid", "1\n");
  REQUIRE(process::RemovePidFile(path).ok());
  CHECK(ReadAll(path) == "1\n");
}

TEST_CASE("WritePidFile fails with the path when the file cannot be written", "[process]") {
  auto st = process::WritePidFile("/nonexistent-roundhouse-test/rh.pid");
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.message(), Contains("/nonexistent-roundhouse-test/rh.pid"));
}

TEST_CASE("Daemonize returns in a new session and the parent exits 0 once ready", "[process]") {
  int report[2];
  REQUIRE(pipe(report) == 0);
  pid_t test_sid = getsid(0);
  int code = InChild([&] {
    close(report[0]);
    auto notifier = process::Daemonize();
    if (!notifier.ok()) return 2;
    // Only the daemon gets here.
    std::string facts = std::to_string(getpid()) + " " + std::to_string(getsid(0)) + "\n";
    if (write(report[1], facts.data(), facts.size()) < 0) _exit(3);
    close(report[1]);
    (void)notifier.value().NotifyReady();
    _exit(0);
  });
  close(report[1]);
  CHECK(code == 0);
  char buf[64] = {};
  ssize_t n = read(report[0], buf, sizeof buf - 1);
  close(report[0]);
  REQUIRE(n > 0);
  long daemon_pid = 0, daemon_sid = 0;
  std::istringstream(std::string(buf, static_cast<size_t>(n))) >> daemon_pid >> daemon_sid;
  CHECK(daemon_sid != test_sid);
  CHECK(daemon_pid != daemon_sid);  // not a session leader
}

TEST_CASE("the parent exits 1 when the daemon gives up before it is ready", "[process]") {
  int code = InChild([] {
    SilenceStderr();
    auto notifier = process::Daemonize();
    if (!notifier.ok()) return 2;
    { process::ReadyNotifier dropped = std::move(notifier).value(); }
    _exit(0);
  });
  CHECK(code == 1);
}

TEST_CASE("the parent waits while the daemon starts up", "[process]") {
  int go[2];
  REQUIRE(pipe(go) == 0);
  fflush(nullptr);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(go[1]);
    auto notifier = process::Daemonize();
    if (!notifier.ok()) _exit(2);
    char c;
    while (read(go[0], &c, 1) < 0) {
    }
    (void)notifier.value().NotifyReady();
    _exit(0);
  }
  close(go[0]);
  usleep(100 * 1000);
  int status = 0;
  CHECK(waitpid(child, &status, WNOHANG) == 0);  // still waiting for the daemon
  REQUIRE(write(go[1], "x", 1) == 1);
  close(go[1]);
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a default ReadyNotifier (no daemon) makes NotifyReady a no-op", "[process]") {
  process::ReadyNotifier none;
  CHECK_FALSE(none.active());
  CHECK(none.NotifyReady().ok());
}

TEST_CASE("DropPrivileges switches user as root and is refused otherwise", "[process]") {
  if (geteuid() != 0) {
    auto st = process::DropPrivileges("nobody");
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.message(), Contains("root"));
    return;
  }
  passwd* nobody = getpwnam("nobody");
  if (nobody == nullptr) {
    WARN("no user 'nobody'; skipping the switch");
    return;
  }
  uid_t nobody_uid = nobody->pw_uid;
  int code = InChild([&] {
    if (!process::DropPrivileges("nobody").ok()) return 2;
    if (geteuid() != nobody_uid || getuid() != nobody_uid) return 3;
    // Now unprivileged: a second switch is refused.
    return process::DropPrivileges("root").ok() ? 4 : 0;
  });
  CHECK(code == 0);
  CHECK_THAT(process::DropPrivileges("no-such-user-roundhouse").message(),
             Contains("no-such-user-roundhouse"));
}

TEST_CASE("RaiseFileLimit sets the soft RLIMIT_NOFILE", "[process]") {
  int code = InChild([] {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t target = rl.rlim_max == RLIM_INFINITY ? 4096 : rl.rlim_max;
    if (target > 4096) target = 4096;
    if (!process::RaiseFileLimit(target).ok()) return 2;
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur == target ? 0 : 3;
  });
  CHECK(code == 0);
}

TEST_CASE("EnableCoreDumps raises RLIMIT_CORE to its hard limit", "[process]") {
  int code = InChild([] {
    rlimit rl{};
    getrlimit(RLIMIT_CORE, &rl);
    rl.rlim_cur = 0;
    setrlimit(RLIMIT_CORE, &rl);
    if (!process::EnableCoreDumps().ok()) return 2;
    rlimit after{};
    getrlimit(RLIMIT_CORE, &after);
    return after.rlim_cur == after.rlim_max ? 0 : 3;
  });
  CHECK(code == 0);
}
