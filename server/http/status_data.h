// What the status endpoint reports, as plain values: a snapshot taken from the broker, the server
// and the store at the moment of a request, plus the Jenkins summaries. The JSON documents
// (api.h) and the Prometheus text (metrics.h) are pure functions of these structs, so they are
// unit-tested without a loop or a socket.
//
// Thread-safety: plain values; collected and used on the loop thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "jenkins/summary.h"
#include "server/broker/broker.h"
#include "storage/job_store.h"

namespace roundhouse::server::http {

// Provides the Jenkins masters' summaries (jenkins::Hub::Summaries). Empty: no Jenkins.
using JenkinsProvider = std::function<std::vector<jenkins::MasterSummary>()>;

struct ServerInfo {
  std::string version;
  int64_t uptime_ms = 0;
  int64_t started_unix = 0;  // seconds
  uint64_t connections = 0;  // Gearman connections open now
  std::string store_type;    // "sqlite" or "none"
  std::string store_path;    // sqlite only
  storage::StoreStats store;  // zero for "none"
  // Requests refused by access control since start, by permission kind ("submit", "register",
  // "admin_read", ...: doc/acl.md); empty when access control is off.
  std::vector<std::pair<std::string, uint64_t>> acl_denials;
  // The Gearman port's limits (issue 12): the --max-memory budget, what it counts now, and
  // what the limits did since start.
  uint64_t memory_budget_bytes = 0;
  uint64_t job_bytes = 0;               // queued and running jobs' data, handles, uniques
  uint64_t unsent_output_bytes = 0;     // owed to Gearman and HTTP-protocol peers, not yet sent
  uint64_t memory_refusals = 0;         // submissions refused at the budget
  uint64_t output_overflows = 0;        // connections closed past --max-output-queue
  uint64_t partial_frame_timeouts = 0;  // connections closed by --partial-frame-timeout
  uint64_t accept_errors = 0;           // accept() failures of every listener (EMFILE, ...)
};

struct FunctionInfo {
  std::string name;
  std::array<uint64_t, broker::kPriorityCount> queued{};  // high, normal, low
  uint64_t running = 0;
  uint32_t workers = 0;
  uint64_t submitted = 0, completed = 0, failed = 0;
};

struct WorkerInfo {
  int fd = -1;  // -1: in-process (a Jenkins executor)
  std::string address;
  std::string client_id;
  std::vector<std::string> functions;
  std::vector<std::string> running;  // handles
  bool sleeping = false;
};

struct JobInfo {
  std::string handle;
  std::string function;
  std::string unique;
  std::string priority;  // "high", "normal", "low"
  std::string state;     // "queued", "scheduled" (epoch job not yet due), "running"
  bool background = false;
  bool ignored = false;  // cancelled, or abandoned while running
  int64_t age_ms = 0;
  int64_t when = 0;      // epoch jobs: Unix seconds
  uint32_t retries = 0;
  std::string worker;    // running: the worker's address or client id
};

// ---- one entry (loop thread); the streamed documents (api.h, metrics.h) use these per slice

FunctionInfo InfoOf(const broker::Function& fn);
WorkerInfo InfoOf(const broker::Peer& peer);
// A job as /api/jobs shows it; `now_ms` (monotonic) and `now_unix` date its age and state.
JobInfo InfoOf(const broker::Job& job, int64_t now_ms, int64_t now_unix);
// Whether /api/jobs lists `job` (of `function` unless empty; cancelled jobs are gone).
bool JobListed(const broker::Job& job, const std::string& function);

// The per-function part of /metrics with its cardinality capped, fed one function at a time
// (in any order): keeps the `max` most active functions (queued + running + workers, then
// submitted, then name: a strict order, so the choice does not depend on the feeding order)
// and sums every other one. O(log max) per function, O(max) memory.
class TopFunctions {
 public:
  explicit TopFunctions(size_t max) : max_(max) {}
  void Add(const broker::Function& fn);
  // The kept functions in name order; `*other` gets the sums over the rest plus `retired`
  // (the counters of freed functions). Call once.
  std::vector<FunctionInfo> Take(const broker::Broker::RetiredCounts& retired, FunctionInfo* other);
  size_t seen() const { return seen_; }

 private:
  struct Ranked {
    uint64_t activity;
    uint64_t submitted;
    FunctionInfo info;
  };
  // Heap order: the least active kept function on top.
  static bool MoreActive(const Ranked& a, const Ranked& b);
  size_t max_;
  size_t seen_ = 0;
  std::vector<Ranked> kept_;  // a heap by MoreActive (least active first)
  FunctionInfo other_;
};

// ---- collection (loop thread)

std::vector<FunctionInfo> CollectFunctions(const broker::Broker& broker);
// The per-function part of /metrics with its cardinality capped: the `max` most active functions
// (queued + running + workers, then submitted, then name), in name order, and in `*other` the
// sums over every other function plus the counters of functions freed since the start (so the
// sum over all series of a counter never goes back). O(functions) time, O(max) strings.
std::vector<FunctionInfo> CollectTopFunctions(const broker::Broker& broker, size_t max,
                                              FunctionInfo* other);
std::vector<WorkerInfo> CollectWorkers(const broker::Broker& broker);
// Jobs in creation order, of `function` only unless empty, at most `limit`; `*matched` is the
// number of jobs that matched before the limit.
std::vector<JobInfo> CollectJobs(const broker::Broker& broker, const std::string& function,
                                 size_t limit, int64_t now_ms, int64_t now_unix,
                                 size_t* matched);

std::string_view PriorityName(broker::Priority p);

}  // namespace roundhouse::server::http
