// What the load consists of: function names, payload bytes, and the submit packets of one
// client (round-robin over the functions, unique ids, priorities). Deterministic except for the
// random bits of uuid uniques. Not thread-safe: one JobMaker per client.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tools/loadgen/options.h"

namespace roundhouse::loadgen {

// `--functions K` names: prefix + 0 .. prefix + (K-1).
std::vector<std::string> FunctionNames(const Options& options);

// `size` bytes of a repeating lower-case pattern; workers and echo checks compare against it.
std::string MakePayload(size_t size);

// Longest unique we generate or record (the protocol's limit).
inline constexpr size_t kMaxUnique = 64;

class JobMaker {
 public:
  // `run_id` makes --unique seq values distinct across runs against the same server.
  JobMaker(const Options& options, int client_index, uint64_t run_id);

  // Appends the next SUBMIT_* request to `out` and copies its unique into `unique`
  // (kMaxUnique bytes of room); returns the unique's size. Never allocates once `out` has room.
  size_t AppendNext(std::string* out, char* unique);

 private:
  size_t MakeUnique(char* unique);

  bool background_;
  UniqueKind unique_kind_;
  PriorityKind priority_kind_;
  std::vector<std::string> functions_;
  std::string payload_;
  std::string seq_prefix_;  // "<run id>-<client>-"
  uint64_t sequence_ = 0;   // jobs made so far
  std::mt19937_64 random_;
};

}  // namespace roundhouse::loadgen
