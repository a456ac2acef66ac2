// roundhouse: a Gearman job server (drop-in for gearmand 1.1.20). main() parses the command
// line, sets up the process (log, daemon, limits, pid file, user) around the Server, and runs it.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>

#include "base/log.h"
#include "base/path_problem.h"
#include "jenkins/master_settings.h"
#include "server/config.h"
#include "server/process.h"
#include "server/server.h"

namespace {

using roundhouse::Config;
using roundhouse::Status;

// Start-up failures are written to stderr as one `roundhouse: ...` line (the daemon's parent
// still shares the user's terminal until it is released) and, when the log is a file or syslog,
// to the log as well.
int Fail(const Config& config, const std::string& message) {
  if (config.log_file != "stderr") RH_LOG(kError, "%s", message.c_str());
  std::fprintf(stderr, "roundhouse: %s\n", message.c_str());
  return 1;
}

int Serve(const Config& config) {
  namespace process = roundhouse::process;

  process::ReadyNotifier ready;
  if (config.daemon) {
    // Before any thread (the store's writer) or libuv loop exists.
    auto daemon = process::Daemonize();
    if (!daemon.ok()) return Fail(config, "cannot daemonize: " + daemon.status().message());
    ready = std::move(daemon).value();
  }
  if (config.broker.job_retries == 0) {
    RH_LOG(kNotice,
           "--job-retries=0 now means \"no retries\": a job is dropped at its first "
           "re-queue (gearmand read 0 as unlimited; -1 is unlimited now)");
  }
  if (config.file_descriptors != 0) {
    Status s = process::RaiseFileLimit(config.file_descriptors);
    if (!s.ok()) RH_LOG(kWarning, "--file-descriptors: %s", s.message().c_str());
  }

  // In an optional so that it can be destroyed before "shutdown complete" is logged: its
  // destructor closes the store (joins the writer thread, checkpoints and closes the database),
  // which can take a noticeable time after a busy run.
  std::optional<roundhouse::server::Server> running(std::in_place, config);
  roundhouse::server::Server& server = *running;
  Status s = server.Start();
  if (!s.ok()) return Fail(config, s.message());
  if (!config.pid_file.empty()) {
    s = process::WritePidFile(config.pid_file);
    if (!s.ok()) {
      const std::string why = roundhouse::DescribePathProblem(config.pid_file);
      return Fail(config, why.empty() ? s.message()
                                      : "cannot write pid file " + config.pid_file +
                                            " (--pid-file): " + why);
    }
  }
  if (!config.user.empty()) {
    s = process::DropPrivileges(config.user);
    if (!s.ok()) return Fail(config, s.message());
  }
  if (config.coredump) {
    s = process::EnableCoreDumps();
    if (!s.ok()) RH_LOG(kWarning, "--coredump: %s", s.message().c_str());
  }
  s = ready.NotifyReady();
  if (!s.ok()) RH_LOG(kError, "releasing the daemon's parent: %s", s.message().c_str());

  const int code = server.Run();
  running.reset();
  if (!config.pid_file.empty()) {
    s = process::RemovePidFile(config.pid_file);
    if (!s.ok()) RH_LOG(kWarning, "%s", s.message().c_str());
  }
  // The last line of a run: the process exits right after it.
  RH_LOG(kNotice, "shutdown complete");
  return code;
}

int Main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);

  const char* env_port = std::getenv("GEARMAND_PORT");
  auto parsed = roundhouse::ParseCommandLine(argc, argv, env_port != nullptr ? env_port : "");
  if (!parsed.ok()) {
    std::fprintf(stderr, "roundhouse: %s\n", parsed.status().message().c_str());
    return 1;
  }
  const Config& config = parsed.value();
  if (config.show_help) {
    std::fputs(roundhouse::UsageText().c_str(), stdout);
    return 0;
  }
  if (config.show_version) {
    std::printf("roundhouse " ROUNDHOUSE_VERSION "\n");
    return 0;
  }
  // Jenkins masters are validated before daemonizing, so a bad one fails the start visibly (and
  // --check-args catches it).
  for (const roundhouse::JenkinsMasterConfig& master : config.jenkins) {
    auto settings = roundhouse::jenkins::ParseMasterSettings(master.name, master.settings,
                                                             master.origin);
    if (!settings.ok()) {
      std::fprintf(stderr, "roundhouse: %s\n", settings.status().message().c_str());
      return 1;
    }
  }
  if (config.check_args) return 0;

  roundhouse::log::SetLevel(config.verbose);
  roundhouse::log::SetSyslog(config.syslog);
  Status s = roundhouse::log::Open(config.log_file);
  if (!s.ok()) {
    const std::string why = roundhouse::DescribePathProblem(config.log_file);
    std::fprintf(stderr, "roundhouse: cannot open log %s (--log-file): %s\n",
                 config.log_file.c_str(), why.empty() ? s.message().c_str() : why.c_str());
    return 1;
  }
  for (const std::string& warning : config.warnings) RH_LOG(kWarning, "%s", warning.c_str());
  return Serve(config);
}

}  // namespace

int main(int argc, char** argv) {
  // Only allocation failure can throw here (the code below main throws nothing on purpose).
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "roundhouse: fatal: %s\n", e.what());
    return 1;
  }
}
