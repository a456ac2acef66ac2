// JobTable: an open-addressing hash index of Job pointers (internal to the broker). The key is
// derived from the job itself (Traits::KeyOf), so an entry is one hash and one pointer; lookups
// take a Traits::Key built from request bytes (no allocation). Linear probing with backward-shift
// deletion (no tombstones); grows at 70% load, shrinks below 1/8.
//
// Traits must provide:
//   using Key = ...;
//   static Key KeyOf(const Job* job);
//   static uint64_t Hash(const Key& key);
//   static bool Equal(const Key& a, const Key& b);
//
// Does not own the jobs. Thread-safety: loop thread only.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "server/broker/job.h"

namespace roundhouse::broker {

template <typename Traits>
class JobTable {
 public:
  using Key = typename Traits::Key;

  size_t size() const { return size_; }

  Job* Find(const Key& key) const {
    if (size_ == 0) return nullptr;
    const uint64_t hash = Traits::Hash(key);
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.job == nullptr) return nullptr;
      if (s.hash == hash && Traits::Equal(Traits::KeyOf(s.job), key)) return s.job;
    }
  }

  // Precondition: no job with an equal key is present.
  void Insert(Job* job) {
    assert(job != nullptr);
    if ((size_ + 1) * 10 > slots_.size() * 7) Rehash(slots_.empty() ? 16 : slots_.size() * 2);
    Place(Slot{Traits::Hash(Traits::KeyOf(job)), job});
    ++size_;
  }

  // Precondition: `job` is present.
  void Erase(const Job* job) {
    const uint64_t hash = Traits::Hash(Traits::KeyOf(job));
    size_t i = hash & mask_;
    while (slots_[i].job != job) {
      assert(slots_[i].job != nullptr);
      i = (i + 1) & mask_;
    }
    // Backward shift: pull later members of the probe run into the hole when their home slot
    // does not lie cyclically in (hole, j].
    for (size_t j = (i + 1) & mask_; slots_[j].job != nullptr; j = (j + 1) & mask_) {
      const size_t home = slots_[j].hash & mask_;
      const bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    --size_;
    if (slots_.size() > 64 && size_ * 8 < slots_.size()) Rehash(slots_.size() / 2);
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    Job* job = nullptr;  // nullptr: empty slot
  };

  void Place(Slot slot) {
    size_t i = slot.hash & mask_;
    while (slots_[i].job != nullptr) i = (i + 1) & mask_;
    slots_[i] = slot;
  }

  void Rehash(size_t capacity) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (const Slot& s : old) {
      if (s.job != nullptr) Place(s);
    }
  }

  // Capacity is 0 or a power of two; at most 70% full.
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

// A 64-bit finaliser (splitmix64) for integer keys and for mixing pointers into string hashes.
inline uint64_t MixBits(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace roundhouse::broker
