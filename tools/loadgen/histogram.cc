#include "tools/loadgen/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace roundhouse::loadgen {
namespace {

constexpr int kLinearBits = 10;  // values < 1024 have their own bucket
constexpr uint64_t kLinear = uint64_t{1} << kLinearBits;
constexpr uint64_t kHalf = kLinear / 2;  // sub-buckets per power of two above
constexpr int kTopExponent = 44;         // ~4.9 hours in nanoseconds
constexpr size_t kBuckets = kLinear + (kTopExponent - kLinearBits + 1) * kHalf;

}  // namespace

Histogram::Histogram() : buckets_(kBuckets, 0) {}

size_t Histogram::IndexOf(uint64_t value) {
  if (value < kLinear) return static_cast<size_t>(value);
  int exponent = std::bit_width(value) - 1;  // >= kLinearBits
  if (exponent > kTopExponent) return kBuckets - 1;
  const int shift = exponent - (kLinearBits - 1);
  const uint64_t mantissa = value >> shift;  // in [kHalf, kLinear)
  return static_cast<size_t>(kLinear + static_cast<uint64_t>(exponent - kLinearBits) * kHalf +
                             (mantissa - kHalf));
}

uint64_t Histogram::MidpointOf(size_t index) {
  if (index < kLinear) return index;
  const uint64_t k = index - kLinear;
  const int exponent = static_cast<int>(k / kHalf) + kLinearBits;
  const uint64_t mantissa = kHalf + k % kHalf;
  const int shift = exponent - (kLinearBits - 1);
  const uint64_t low = mantissa << shift;
  return low + (uint64_t{1} << shift) / 2;
}

void Histogram::Record(uint64_t value) {
  ++buckets_[IndexOf(value)];
  ++count_;
  max_ = std::max(max_, value);
}

void Histogram::Merge(const Histogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

void Histogram::Clear() {
  std::fill(buckets_.begin(), buckets_.end(), 0);
  count_ = 0;
  max_ = 0;
}

uint64_t Histogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  const double clamped = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(clamped * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(MidpointOf(i), max_);
  }
  return max_;
}

}  // namespace roundhouse::loadgen
