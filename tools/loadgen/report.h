// The two renderings of a run: one JSON object on one line (for scripts such as
// tools/compare.py) and one human-readable line.
#pragma once

#include <string>

#include "tools/loadgen/options.h"
#include "tools/loadgen/run.h"

namespace roundhouse::loadgen {

// Keys: tool, mode, host, port, params{...}, jobs, seconds, jobs_per_s, latency_of, samples,
// p50_us, p99_us, p999_us, max_us (null without samples), submitted, created,
// completed_by_clients, completed_by_workers, idle_noops, unfinished, left_queued, errors,
// error_packets, first_error (null when none), timed_out, failed. No trailing newline.
std::string FormatJson(const Options& options, const RunResult& result);

std::string FormatHuman(const Options& options, const RunResult& result);

}  // namespace roundhouse::loadgen
