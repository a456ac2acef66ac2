// JobHeap: an intrusive binary min-heap of jobs (internal to the broker) that records each job's
// position in Job::heap_pos_, so a cancelled timer is removed in O(log n) instead of lingering.
// A job is in at most one JobHeap at a time (epoch jobs wait before they run; timeouts are armed
// while they run). `Less` is a stateless strict weak order on `const Job*`.
//
// Does not own the jobs. Thread-safety: loop thread only.
#pragma once

#include <cassert>
#include <cstddef>
#include <vector>

#include "server/broker/job.h"

namespace roundhouse::broker {

template <typename Less>
class JobHeap {
 public:
  bool empty() const { return v_.empty(); }
  size_t size() const { return v_.size(); }
  Job* top() const { return v_.front(); }
  static bool Contains(const Job* job) { return job->heap_pos_ != Job::kNoHeapPos; }

  void Push(Job* job) {
    assert(!Contains(job));
    v_.push_back(job);
    job->heap_pos_ = v_.size() - 1;
    SiftUp(v_.size() - 1);
  }

  // Precondition: !empty().
  Job* Pop() {
    Job* job = v_.front();
    Remove(job);
    return job;
  }

  // Precondition: `job` is in this heap.
  void Remove(Job* job) {
    const size_t i = job->heap_pos_;
    assert(i < v_.size() && v_[i] == job);
    Job* last = v_.back();
    v_.pop_back();
    job->heap_pos_ = Job::kNoHeapPos;
    if (last == job) return;
    Set(i, last);
    SiftDown(i);
    SiftUp(last->heap_pos_);
  }

 private:
  void Set(size_t i, Job* job) {
    v_[i] = job;
    job->heap_pos_ = i;
  }

  void SiftUp(size_t i) {
    Job* job = v_[i];
    while (i > 0) {
      const size_t parent = (i - 1) / 2;
      if (!Less()(job, v_[parent])) break;
      Set(i, v_[parent]);
      i = parent;
    }
    Set(i, job);
  }

  void SiftDown(size_t i) {
    Job* job = v_[i];
    const size_t n = v_.size();
    for (;;) {
      size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && Less()(v_[child + 1], v_[child])) ++child;
      if (!Less()(v_[child], job)) break;
      Set(i, v_[child]);
      i = child;
    }
    Set(i, job);
  }

  std::vector<Job*> v_;  // heap order under Less; v_[i]->heap_pos_ == i
};

}  // namespace roundhouse::broker
