// rh-loadgen's command line: what to run and against which server. Pure data plus a parser that
// validates combinations; nothing here touches a socket or the clock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace roundhouse::loadgen {

enum class Mode {
  kBackground,  // SUBMIT_JOB_BG with a window of unacknowledged submits; workers complete them
  kForeground,  // SUBMIT_JOB, `window` jobs in flight per client until WORK_COMPLETE
  kLatency,     // SUBMIT_JOB, one job in flight per client; percentiles of the round trip
  kSubmitOnly,  // SUBMIT_JOB_BG, no workers; counts JOB_CREATED (queue fill, durability tests)
  kDrain,       // workers only: consume whatever is queued until idle
};

enum class UniqueKind { kNone, kUuid, kSeq };
enum class PriorityKind { kNormal, kHigh, kLow, kMixed };
enum class ResultKind { kEmpty, kEcho };

struct Options {
  Mode mode = Mode::kBackground;
  std::string host = "127.0.0.1";
  uint16_t port = 4730;

  int clients = 1;
  int workers = 1;
  int window = 100;  // forced to 1 in latency mode
  int threads = 1;
  int idle_connections = 0;
  std::string idle_function = "rh_idle";

  // Exactly one of jobs (> 0) and seconds bounds the measured phase; seconds is the default.
  int64_t jobs = 0;
  double seconds = 10;
  double warmup = 0;   // seconds run before measuring (seconds mode only)
  double timeout = 0;  // hard limit on the whole run; 0 = derived from jobs/seconds
  // Background mode with workers: clients pause while more than this many submitted jobs are not
  // yet completed by the workers, so the queue stays bounded. 0 = no limit.
  int64_t backlog = 10000;

  size_t payload = 64;
  int functions = 1;
  std::string function_prefix = "gload_";
  UniqueKind unique = UniqueKind::kNone;
  PriorityKind priority = PriorityKind::kNormal;
  ResultKind result = ResultKind::kEmpty;

  std::string record_path;       // submit-only / drain: one "HANDLE\tUNIQUE" line per job
  int idle_exit_ms = 1000;       // drain: stop after this long without a job
  int connect_concurrency = 32;  // connections opening at once per thread (see Loop::opening_)
  // TLS to the server (tools/bench_tls.py): every connection does its handshake right after the
  // TCP connect, before it counts as open. tls_ca empty: the server's certificate is not checked.
  bool tls = false;
  std::string tls_ca;
  bool show_help = false;
};

// Parses argv (flags `--name value` or `--name=value`). On error the Status names the flag.
Result<Options> ParseOptions(int argc, char** argv);

// The --help text.
std::string_view Usage();

std::string_view ModeName(Mode mode);
std::string_view UniqueName(UniqueKind kind);
std::string_view PriorityName(PriorityKind kind);
std::string_view ResultName(ResultKind kind);

}  // namespace roundhouse::loadgen
