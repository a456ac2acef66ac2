// rh-loadgen: drives a Gearman server with raw-protocol clients and workers and reports the
// rate and latency it saw (tools/README.md). Exit status: 0 ok, 1 protocol errors or lost
// connections, 2 hard timeout, 64 bad usage or setup failure.
#include <csignal>
#include <cstdio>
#include <string>

#include "tools/loadgen/options.h"
#include "tools/loadgen/report.h"
#include "tools/loadgen/run.h"

namespace lg = roundhouse::loadgen;

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed record pipe must not kill the run silently
  roundhouse::Result<lg::Options> parsed = lg::ParseOptions(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "rh-loadgen: %s (see --help)\n", parsed.status().message().c_str());
    return 64;
  }
  const lg::Options& options = parsed.value();
  if (options.show_help) {
    std::fputs(std::string(lg::Usage()).c_str(), stdout);
    return 0;
  }
  roundhouse::Result<lg::RunResult> run = lg::Run(options);
  if (!run.ok()) {
    std::fprintf(stderr, "rh-loadgen: %s\n", run.status().message().c_str());
    return 64;
  }
  const lg::RunResult& result = run.value();
  std::printf("%s\n", lg::FormatJson(options, result).c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "%s\n", lg::FormatHuman(options, result).c_str());
  if (result.stats.errors > 0 || result.failed) return 1;
  if (result.timed_out) return 2;
  return 0;
}
