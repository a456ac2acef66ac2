// Latency histogram with bounded relative error (log-linear buckets, as in HdrHistogram): values
// below 1024 are exact, larger values fall into buckets no wider than 1/512 of their value.
// Recording is O(1) and never allocates after construction. Not thread-safe: one per thread,
// merged at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace roundhouse::loadgen {

class Histogram {
 public:
  Histogram();

  // Records one value (nanoseconds here); values past the top bucket are clamped into it.
  void Record(uint64_t value);
  void Merge(const Histogram& other);
  void Clear();

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  // The value at quantile q in [0, 1] (midpoint of its bucket); 0 when empty.
  uint64_t Quantile(double q) const;

 private:
  static size_t IndexOf(uint64_t value);
  static uint64_t MidpointOf(size_t index);

  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

}  // namespace roundhouse::loadgen
