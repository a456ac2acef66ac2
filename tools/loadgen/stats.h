// Counters one loop thread keeps about what it sent and received, merged across threads at the
// end. Plain data, owned by one thread at a time.
#pragma once

#include <cstdint>
#include <string>

#include "tools/loadgen/histogram.h"

namespace roundhouse::loadgen {

struct Stats {
  int64_t submitted = 0;      // SUBMIT_* packets sent
  int64_t created = 0;        // JOB_CREATED received
  int64_t client_done = 0;    // WORK_COMPLETE received by clients for their own jobs
  int64_t worker_done = 0;    // jobs the workers completed (WORK_COMPLETE sent)
  int64_t idle_noops = 0;     // NOOPs the idle connections received (and did not answer)
  int64_t error_packets = 0;  // ERROR packets received
  // Everything that makes the run invalid: ERROR packets, unexpected packet types, wrong
  // payloads, lost connections. Any non-zero value makes rh-loadgen exit 1.
  int64_t errors = 0;
  std::string first_error;  // the first of them, for the report
  Histogram latency;        // nanoseconds; recorded only while measuring

  void Error(std::string what) {
    ++errors;
    if (first_error.empty()) first_error = std::move(what);
  }

  void Merge(const Stats& other) {
    submitted += other.submitted;
    created += other.created;
    client_done += other.client_done;
    worker_done += other.worker_done;
    idle_noops += other.idle_noops;
    error_packets += other.error_packets;
    errors += other.errors;
    if (first_error.empty()) first_error = other.first_error;
    latency.Merge(other.latency);
  }
};

}  // namespace roundhouse::loadgen
