// One load-generator run: resolves the server, raises the descriptor limit, starts the loop
// threads, moves them through the phases (connect and register -> go -> warm-up -> measure ->
// quiesce -> stop) and collects what they counted. Runs on the main thread; the loops run on
// their own threads and meet it only through Shared.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "tools/loadgen/options.h"
#include "tools/loadgen/stats.h"

namespace roundhouse::loadgen {

struct RunResult {
  Stats stats;             // all loops merged
  int64_t jobs = 0;        // progress made in the measured phase (see ProgressCounter)
  double seconds = 0;      // length of the measured phase
  bool timed_out = false;  // the hard --timeout ended the run
  bool failed = false;     // a connection failed or was lost
  // Jobs still in flight after the quiesce phase gave up (they stay on the server).
  int64_t unfinished = 0;
  // bg with workers: acknowledged jobs the workers had not completed when the run ended.
  int64_t left_queued = 0;
};

// Setup failures (unknown host, descriptor limit too low, record file) come back as a Status;
// everything that happens on the wire is in RunResult.
Result<RunResult> Run(const Options& options);

}  // namespace roundhouse::loadgen
