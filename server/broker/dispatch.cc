// GRAB selection (§3.4), epoch jobs (§3.5), wake-ups (§3.6), re-queue and retries (§3.7),
// CAN_DO_TIMEOUT (§3.8), WORK_* results (§3.9) and the timers behind them.

#include <algorithm>
#include <cassert>

#include "base/log.h"
#include "protocol/admin_line.h"
#include "server/broker/broker_impl.h"

namespace roundhouse::broker {

using protocol::PacketType;

// ---- becoming runnable

void Broker::Impl::MakeRunnable(Job* job) {
  if (job->when_ != 0 && job->when_ > clock.UnixSeconds()) {
    // Not yet due: kept out of the queue so it never blocks others; wakes no one (§3.5).
    job->state_ = Job::State::kWaiting;
    ++job->function_->queued_[PriorityIndex(job->priority_)];
    epoch_heap_.Push(job);
    Announce(EpochDeadlineMs(job));
    return;
  }
  Enqueue(job);
}

void Broker::Impl::Enqueue(Job* job, bool wake) {
  Function* fn = job->function_;
  const size_t p = PriorityIndex(job->priority_);
  job->state_ = Job::State::kQueued;
  fn->queues_[p].PushBack(job);
  ++fn->queued_[p];
  if (wake) Wake(fn);
}

void Broker::Impl::Wake(Function* fn) {
  if (fn->wakeable_ == 0) return;
  auto& ring = fn->ring_;
  const size_t n = ring.size();
  const size_t start = fn->cursor_;
  const uint32_t limit = options.worker_wakeup;
  size_t at = start;
  uint32_t sent = 0;
  for (size_t visited = 0; visited < n; ++visited) {
    Peer* peer = ring[at];
    at = (at + 1) % n;
    if (!Wakeable(*peer)) continue;
    SetSleepFlags(*peer, true, true);
    peer->SendNoop();
    ++sent;
    if (limit != 0 && sent == limit) break;
    if (fn->wakeable_ == 0) {
      at = start;  // nobody else to wake: the rest of the turn would end where it began
      break;
    }
  }
  fn->cursor_ = at;
}

void Broker::Impl::PromoteDueEpochJobs() {
  if (epoch_heap_.empty()) return;
  const int64_t now = clock.UnixSeconds();
  while (!epoch_heap_.empty() && epoch_heap_.top()->when_ <= now) {
    Job* job = epoch_heap_.Pop();
    --job->function_->queued_[PriorityIndex(job->priority_)];
    Enqueue(job);
  }
}

// ---- workers asking for work

const Job* Broker::Impl::Grab(Peer& peer) {
  PeerState& st = peer.state_;
  st.acted_as_worker = true;
  SetSleepFlags(peer, false, false);
  PromoteDueEpochJobs();

  auto& regs = st.registrations;
  size_t chosen = regs.size();
  Job* job = nullptr;
  if (options.priority_order == PriorityOrder::kGlobal) {
    // 2.0 order: HIGH of any registered function beats every NORMAL, which beats every LOW.
    for (size_t p = 0; p < kPriorityCount && job == nullptr; ++p) {
      for (size_t i = 0; i < regs.size(); ++i) {
        if (!regs[i].function->queues_[p].empty()) {
          job = regs[i].function->queues_[p].front();
          chosen = i;
          break;
        }
      }
    }
  } else {
    // 1.1.x order: the first registration with due jobs yields its highest priority.
    for (size_t i = 0; i < regs.size() && job == nullptr; ++i) {
      for (size_t p = 0; p < kPriorityCount; ++p) {
        if (!regs[i].function->queues_[p].empty()) {
          job = regs[i].function->queues_[p].front();
          chosen = i;
          break;
        }
      }
    }
  }
  if (job == nullptr) return nullptr;

  const int64_t timeout_ms = regs[chosen].timeout_ms;
  if (options.priority_order == PriorityOrder::kGlobal || options.round_robin) {
    const auto it = regs.begin() + static_cast<std::ptrdiff_t>(chosen);
    std::rotate(it, it + 1, regs.end());  // the registration used moves to the end
  }
  Assign(peer, job, timeout_ms);
  return job;
}

void Broker::Impl::Assign(Peer& peer, Job* job, int64_t timeout_ms) {
  assert(job->state_ == Job::State::kQueued);
  Function* fn = job->function_;
  const size_t p = PriorityIndex(job->priority_);
  fn->queues_[p].Remove(job);
  --fn->queued_[p];
  ++fn->running_;
  job->state_ = Job::State::kRunning;
  job->worker_ = &peer;
  auto& running = peer.state_.running;
  job->worker_slot_ = static_cast<uint32_t>(running.size());
  running.push_back(job);
  if (timeout_ms > 0) {
    job->deadline_ms_ = clock.MonotonicMs() + timeout_ms;
    timeout_heap_.Push(job);
    Announce(job->deadline_ms_);
  }
}

void Broker::Impl::PreSleep(Peer& peer) {
  PeerState& st = peer.state_;
  st.acted_as_worker = true;
  PromoteDueEpochJobs();
  for (const Registration& r : st.registrations) {
    for (const auto& queue : r.function->queues_) {
      if (!queue.empty()) {
        // A due job exists: NOOP now, whatever NOOP-sent says, and stay awake (§3.6).
        SetSleepFlags(peer, false, st.noop_sent);
        peer.SendNoop();
        return;
      }
    }
  }
  SetSleepFlags(peer, true, st.noop_sent);
}

// ---- results

void Broker::Impl::Forward(const Job* job, PacketType type, std::string_view payload) {
  for (const Job::ClientRef& c : job->clients_) c.peer->SendWork(type, payload);
}

WorkResult Broker::Impl::Work(Peer& peer, PacketType type, std::string_view handle,
                              std::string_view payload, std::string_view numerator,
                              std::string_view denominator) {
  if (type == PacketType::kWorkFail && handle.size() > kMaxHandle) {
    return WorkResult::kHandleTooLarge;
  }
  Job* job = FindByHandle(handle);
  if (job == nullptr) return WorkResult::kJobNotFound;
  if (job->state_ != Job::State::kRunning || job->worker_ != &peer) {
    if (!TimedOutBy(job, peer)) return WorkResult::kJobNotFound;
    return LateWork(job, type, payload, numerator, denominator);
  }
  switch (type) {
    case PacketType::kWorkStatus:
    case PacketType::kWorkData:
    case PacketType::kWorkWarning:
      Progress(job, type, payload, numerator, denominator);
      return WorkResult::kOk;
    case PacketType::kWorkComplete:
    case PacketType::kWorkFail:
    case PacketType::kWorkException:
      Finish(job, type, payload);
      return WorkResult::kOk;
    default:
      assert(false && "not a WORK_* packet");
      return WorkResult::kJobNotFound;
  }
}

bool Broker::Impl::TimedOutBy(const Job* job, const Peer& peer) {
  const uint64_t serial = peer.state_.serial;
  return serial != 0 && std::find(job->timed_out_by_.begin(), job->timed_out_by_.end(), serial) !=
                            job->timed_out_by_.end();
}

WorkResult Broker::Impl::LateWork(Job* job, PacketType type, std::string_view payload,
                                  std::string_view numerator, std::string_view denominator) {
  // The job was re-queued when `peer`'s CAN_DO_TIMEOUT expired. It is queued again (nobody took
  // it since) or another worker holds it now; it cannot be pending or epoch-waiting (Requeue
  // enqueues directly).
  assert(job->state_ == Job::State::kQueued || job->state_ == Job::State::kRunning);
  const bool held_by_other = job->state_ == Job::State::kRunning;
  switch (type) {
    case PacketType::kWorkStatus:
    case PacketType::kWorkData:
    case PacketType::kWorkWarning:
      // Forwarded while nobody else runs the job; otherwise the new holder's progress is the one
      // clients see, and this is accepted and discarded so the late worker carries on to its
      // result (libgearman workers abort a job whose WORK_DATA gets an ERROR).
      if (!held_by_other) Progress(job, type, payload, numerator, denominator);
      return WorkResult::kOk;
    case PacketType::kWorkComplete:
    case PacketType::kWorkFail:
    case PacketType::kWorkException:
      // First result wins: this one ends the job, wherever it is now. A worker that took it
      // since is told (in-process workers abort; network workers' later packets get
      // JOB_NOT_FOUND).
      RH_LOG(kNotice, "Late result from a timed-out worker ends job: %.*s %.*s (%s)",
             static_cast<int>(job->handle().size()), job->handle().data(),
             static_cast<int>(job->unique().size()), job->unique().data(),
             held_by_other ? "taken from its new worker" : "removed from the queue");
      if (held_by_other && !job->ignored()) job->worker_->JobWithdrawn(*job);
      Finish(job, type, payload);
      return WorkResult::kOk;
    default:
      assert(false && "not a WORK_* packet");
      return WorkResult::kJobNotFound;
  }
}

void Broker::Impl::Progress(Job* job, PacketType type, std::string_view payload,
                            std::string_view numerator, std::string_view denominator) {
  if (type == PacketType::kWorkStatus) {
    job->numerator_ = protocol::ParseDigitsOrZero(numerator);
    job->denominator_ = protocol::ParseDigitsOrZero(denominator);
  }
  Forward(job, type, payload);
}

void Broker::Impl::Finish(Job* job, PacketType type, std::string_view payload) {
  // A cancelled job's result is discarded and counted nowhere (it left every count at cancel).
  if (type == PacketType::kWorkException) {
    if (!job->cancelled_) ++job->function_->failed_;
    // §3.9: clients without the `exceptions` option get WORK_FAIL "HANDLE\0".
    const std::string_view handle_nul(job->handle().data(), job->handle().size() + 1);
    for (const Job::ClientRef& c : job->clients_) {
      if (c.peer->state_.exceptions) {
        c.peer->SendWork(PacketType::kWorkException, payload);
      } else {
        c.peer->SendWork(PacketType::kWorkFail, handle_nul);
      }
    }
  } else {
    if (!job->cancelled_) {
      ++(type == PacketType::kWorkComplete ? job->function_->completed_ : job->function_->failed_);
    }
    Forward(job, type, payload);
  }
  Destroy(job);
}

// ---- taking jobs back

void Broker::Impl::Unassign(Job* job) {
  assert(job->state_ == Job::State::kRunning && job->worker_ != nullptr);
  if (JobHeap<DeadlineLess>::Contains(job)) timeout_heap_.Remove(job);
  auto& running = job->worker_->state_.running;
  const uint32_t slot = job->worker_slot_;
  assert(running[slot] == job);
  Job* moved = running.back();
  running[slot] = moved;
  moved->worker_slot_ = slot;
  running.pop_back();
  job->worker_ = nullptr;
  if (!job->cancelled_) --job->function_->running_;  // a cancelled job left the count already
}

void Broker::Impl::Requeue(Job* job) {
  assert(job->state_ == Job::State::kRunning);
  if (job->cancelled_ || job->Abandoned()) {
    Destroy(job);  // nobody wants it any more (§3.10, §3.11)
    return;
  }
  if (stopping) {
    // Shutdown detaches every worker; that is not the job's fault and must not cost it a retry
    // or its durable row.
    Unassign(job);
    Enqueue(job, /*wake=*/false);
    return;
  }
  ++job->retries_;
  const int limit = options.job_retries;
  if (limit == 0 || (limit > 0 && job->retries_ >= static_cast<uint32_t>(limit))) {
    RH_LOG(kNotice, "Dropped job due to max retry count: %.*s %.*s",
           static_cast<int>(job->handle().size()), job->handle().data(),
           static_cast<int>(job->unique().size()), job->unique().data());
    ++job->function_->failed_;
    Forward(job, PacketType::kWorkFail, job->handle());
    Destroy(job);
    return;
  }
  Unassign(job);
  job->numerator_ = job->denominator_ = 0;
  Enqueue(job);
}

bool Broker::Impl::PutBack(Peer& peer, std::string_view handle) {
  Job* job = FindByHandle(handle);
  if (job == nullptr || job->state_ != Job::State::kRunning || job->worker_ != &peer) return false;
  if (job->cancelled_ || job->Abandoned()) {
    Destroy(job);
    return true;
  }
  Unassign(job);
  job->numerator_ = job->denominator_ = 0;
  Function* fn = job->function_;
  const size_t p = PriorityIndex(job->priority_);
  job->state_ = Job::State::kQueued;
  fn->queues_[p].PushFront(job);
  ++fn->queued_[p];
  if (!stopping) Wake(fn);
  return true;
}

void Broker::Impl::Destroy(Job* job) {
  Function* fn = job->function_;
  const size_t p = PriorityIndex(job->priority_);
  switch (job->state_) {
    case Job::State::kPending:
      --fn->pending_;
      break;
    case Job::State::kWaiting:
      epoch_heap_.Remove(job);
      --fn->queued_[p];
      break;
    case Job::State::kQueued:
      fn->queues_[p].Remove(job);
      --fn->queued_[p];
      break;
    case Job::State::kRunning:
      Unassign(job);
      break;
  }
  while (!job->clients_.empty()) PopClient(job);
  if (job->indexed_) by_unique_.Erase(job);
  by_id_.Erase(job);
  for (Broker::JobCursor* cursor : cursors_) {
    if (cursor->next_ == job) cursor->next_ = JobList<kCreationLink>::Next(job);
  }
  all_jobs_.Remove(job);
  fn->jobs_.Remove(job);
  if (job->durable_ || job->write_pending_) store->Remove(job->id_);
  DetachWrite(job);
  assert(job->heap_pos_ == Job::kNoHeapPos && job->worker_ == nullptr);
  FreeJob(job);
  MaybeFree(fn);
}

// ---- timers

int64_t Broker::Impl::EpochDeadlineMs(const Job* job) const {
  const int64_t until_us = job->when_ * 1'000'000 - clock.UnixMicros();
  return clock.MonotonicMs() + std::max<int64_t>(0, (until_us + 999) / 1000);
}

std::optional<int64_t> Broker::Impl::NextTimerDeadline() const {
  std::optional<int64_t> next;
  if (!timeout_heap_.empty()) next = timeout_heap_.top()->deadline_ms_;
  if (!epoch_heap_.empty()) {
    const int64_t epoch = EpochDeadlineMs(epoch_heap_.top());
    if (!next || epoch < *next) next = epoch;
  }
  return next;
}

void Broker::Impl::Announce(int64_t deadline_ms) {
  if (announced_ && *announced_ <= deadline_ms) return;
  announced_ = deadline_ms;
  if (schedule) schedule(deadline_ms);
}

void Broker::Impl::RunTimers() {
  const int64_t now = clock.MonotonicMs();
  while (!timeout_heap_.empty() && timeout_heap_.top()->deadline_ms_ <= now) {
    Job* job = timeout_heap_.top();
    RH_LOG(kWarning, "Worker timeout reached on job, requeueing: %.*s %.*s",
           static_cast<int>(job->handle().size()), job->handle().data(),
           static_cast<int>(job->unique().size()), job->unique().data());
    // Remembered so this worker's late result can still end the job (see LateWork).
    if (!TimedOutBy(job, *job->worker_)) {
      job->timed_out_by_[job->timed_out_next_] = job->worker_->state_.serial;
      job->timed_out_next_ = static_cast<uint8_t>((job->timed_out_next_ + 1) % Job::kMaxTimedOut);
    }
    Requeue(job);  // removes it from the heap
  }
  PromoteDueEpochJobs();
  announced_ = NextTimerDeadline();
  if (announced_ && schedule) schedule(*announced_);
}

}  // namespace roundhouse::broker
