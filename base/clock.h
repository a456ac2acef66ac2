// Clock seam. The broker and the Jenkins adapters read time only through this interface so tests
// can run timeouts and epoch jobs on a fake clock without sleeping. Loop thread only.
#pragma once

#include <cstdint>

namespace roundhouse {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic milliseconds, for timeouts. Never goes backwards.
  virtual int64_t MonotonicMs() const = 0;
  // Wall-clock Unix time in microseconds, for epoch jobs and handle seeds.
  virtual int64_t UnixMicros() const = 0;
  int64_t UnixSeconds() const { return UnixMicros() / 1'000'000; }
};

// The real clocks (CLOCK_MONOTONIC, CLOCK_REALTIME).
class SystemClock final : public Clock {
 public:
  int64_t MonotonicMs() const override;
  int64_t UnixMicros() const override;
};

// A clock tests move by hand.
class FakeClock final : public Clock {
 public:
  int64_t MonotonicMs() const override { return mono_ms_; }
  int64_t UnixMicros() const override { return unix_us_; }
  void AdvanceMs(int64_t ms) {
    mono_ms_ += ms;
    unix_us_ += ms * 1000;
  }
  void SetUnixMicros(int64_t us) { unix_us_ = us; }

 private:
  int64_t mono_ms_ = 1'000'000;
  int64_t unix_us_ = 1'700'000'000'000'000;
};

}  // namespace roundhouse
