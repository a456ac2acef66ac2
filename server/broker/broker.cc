// Broker construction, the public forwarding layer, peers and worker registrations.

#include "server/broker/broker.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "server/broker/broker_impl.h"

namespace roundhouse::broker {

// ---- Job

std::string_view Job::function_name() const { return function_->name(); }

void Job::ResetForReuse() {
  if (bytes_.capacity() > kMaxReusedBytes) {
    std::string().swap(bytes_);
  } else {
    bytes_.clear();
  }
  if (clients_.capacity() > 16) {
    std::vector<ClientRef>().swap(clients_);
  } else {
    clients_.clear();
  }
  data_len_ = 0;
  handle_len_ = unique_len_ = reducer_len_ = 0;
  id_ = 0;
  function_ = nullptr;
  when_ = 0;
  numerator_ = denominator_ = 0;
  retries_ = 0;
  priority_ = Priority::kNormal;
  state_ = State::kQueued;
  background_ = durable_ = write_pending_ = cancelled_ = indexed_ = false;
  timed_out_by_.fill(0);
  timed_out_next_ = 0;
  worker_ = nullptr;
  worker_slot_ = 0;
  links_[0] = links_[1] = links_[2] = Link{};
  heap_pos_ = kNoHeapPos;
  deadline_ms_ = 0;
}

// ---- Impl: construction and job memory

Broker::Impl::Impl(const Options& opts, Clock& clk, storage::JobStore* st,
                   std::function<void(int64_t)> sched)
    : options(opts),
      clock(clk),
      store(st),
      schedule(std::move(sched)),
      write_token_(new WriteToken{this}) {}

Broker::Impl::~Impl() {
  // Callbacks still owed by the store find impl null; the last of them frees the token. (One the
  // store destroys without running leaks these few bytes; stores run every callback.)
  if (write_token_->outstanding == 0) {
    delete write_token_;
  } else {
    write_token_->impl = nullptr;
  }
  // Owned jobs; the free list's unique_ptrs free themselves.
  for (Job* job = all_jobs_.front(); job != nullptr;) {
    Job* next = JobList<kCreationLink>::Next(job);
    delete job;
    job = next;
  }
}

Job* Broker::Impl::AllocJob() {
  if (free_jobs_.empty()) return new Job();
  Job* job = free_jobs_.back().release();
  free_jobs_.pop_back();
  return job;
}

void Broker::Impl::FreeJob(Job* job) {
  job_bytes_ -= job->bytes_.size();
  job->ResetForReuse();
  if (free_jobs_.size() < kMaxFreeJobs) {
    free_jobs_.emplace_back(job);
  } else {
    delete job;
  }
}

// ---- Impl: functions

Function* Broker::Impl::FindFunction(std::string_view name) const {
  auto it = functions_.find(name);
  return it == functions_.end() ? nullptr : it->second.get();
}

Function* Broker::Impl::GetOrCreateFunction(std::string_view name) {
  if (Function* fn = FindFunction(name)) return fn;
  std::unique_ptr<Function> fn(new Function(std::string(name)));
  Function* raw = fn.get();
  functions_.emplace(std::string(name), std::move(fn));
  by_name_.insert(raw);
  NoteGrowth();
  return raw;
}

void Broker::Impl::MaybeFree(Function* fn) {
  if (fn->jobs_.empty() && fn->ring_.empty() && !fn->pinned()) FreeFunction(fn);
}

void Broker::Impl::FreeFunction(Function* fn) {
  assert(fn->jobs_.empty() && fn->ring_.empty() && fn->wakeable_ == 0);
  retired_.submitted += fn->submitted_;
  retired_.completed += fn->completed_;
  retired_.failed += fn->failed_;
  by_name_.erase(fn);
  functions_.erase(functions_.find(fn->name()));  // frees it
  // The bucket array never shrinks by itself: after 200k names it would keep megabytes (and
  // pin the heap around it) for good. Shrinking to twice the size once it is 1/8 full keeps
  // the cost amortised O(1) per free.
  if (functions_.bucket_count() > kMinShrinkBuckets &&
      functions_.size() * 8 < functions_.bucket_count()) {
    functions_.rehash(functions_.size() * 2);
  }
}

// ---- Impl: peers

void Broker::Impl::Attach(Peer& peer) {
  PeerState& st = peer.state_;
  assert(!st.attached);
  st.attached = true;
  st.serial = ++last_peer_serial_;
  st.exceptions = options.exceptions_default;
  peers_.push_back(&peer);
}

void Broker::Impl::Detach(Peer& peer) {
  PeerState& st = peer.state_;
  assert(st.attached);

  // Pending submit replies are dropped; the writes themselves go on.
  for (const Peer::PendingSubmit& p : peer.pending_submits_) {
    if (p.ready) continue;
    auto it = writes_.find(p.write_id);
    assert(it != writes_.end());
    auto& waiters = it->second.waiters;
    waiters.erase(std::remove_if(waiters.begin(), waiters.end(),
                                 [&](const Waiter& w) { return w.peer == &peer; }),
                  waiters.end());
  }
  peer.pending_submits_.clear();

  // Registrations first, so the re-queues below never wake the departing peer.
  while (!st.registrations.empty()) RemoveRegistration(peer, st.registrations.size() - 1);
  SetSleepFlags(peer, false, false);

  // Then the jobs it waits on (§3.10), before the jobs it runs: a job this peer both submitted
  // and ran is abandoned, so it is dropped below rather than re-queued.
  while (!st.waiting.empty()) {
    Job* job = st.waiting.back();
    const auto slot = static_cast<uint32_t>(st.waiting.size() - 1);
    auto& clients = job->clients_;
    auto it = std::find_if(clients.begin(), clients.end(), [&](const Job::ClientRef& c) {
      return c.peer == &peer && c.slot == slot;
    });
    assert(it != clients.end());
    *it = clients.back();
    clients.pop_back();
    st.waiting.pop_back();
    OnClientLeft(job, &peer);
  }

  while (!st.running.empty()) Requeue(st.running.back());

  st.attached = false;
  peers_.erase(std::find(peers_.begin(), peers_.end(), &peer));
}

void Broker::Impl::SetSleepFlags(Peer& peer, bool sleeping, bool noop_sent) {
  PeerState& st = peer.state_;
  const bool was = Wakeable(peer);
  st.sleeping = sleeping;
  st.noop_sent = noop_sent;
  const bool now = Wakeable(peer);
  if (was == now) return;
  for (const Registration& r : st.registrations) {
    if (now) {
      ++r.function->wakeable_;
    } else {
      assert(r.function->wakeable_ > 0);
      --r.function->wakeable_;
    }
  }
}

void Broker::Impl::CanDo(Peer& peer, std::string_view name, int64_t timeout_ms) {
  PeerState& st = peer.state_;
  st.acted_as_worker = true;
  // §3.8: 1..999 ms behave as one second; zero or negative means no timeout.
  if (timeout_ms <= 0) {
    timeout_ms = 0;
  } else if (timeout_ms < 1000) {
    timeout_ms = 1000;
  }
  Function* fn = GetOrCreateFunction(name);
  for (Registration& r : st.registrations) {
    if (r.function == fn) {  // a repeat keeps its position and updates the timeout (§3.13 #10)
      r.timeout_ms = timeout_ms;
      return;
    }
  }
  st.registrations.push_back(Registration{fn, timeout_ms});
  fn->ring_.push_back(&peer);
  if (Wakeable(peer)) ++fn->wakeable_;
}

void Broker::Impl::RemoveRegistration(Peer& peer, size_t index) {
  PeerState& st = peer.state_;
  Function* fn = st.registrations[index].function;
  auto& ring = fn->ring_;
  const auto pos = static_cast<size_t>(std::find(ring.begin(), ring.end(), &peer) - ring.begin());
  assert(pos < ring.size());
  ring.erase(ring.begin() + static_cast<std::ptrdiff_t>(pos));
  if (pos < fn->cursor_) --fn->cursor_;
  if (fn->cursor_ >= ring.size()) fn->cursor_ = 0;
  if (Wakeable(peer)) {
    assert(fn->wakeable_ > 0);
    --fn->wakeable_;
  }
  st.registrations.erase(st.registrations.begin() + static_cast<std::ptrdiff_t>(index));
  MaybeFree(fn);
}

void Broker::Impl::CantDo(Peer& peer, std::string_view name) {
  PeerState& st = peer.state_;
  Function* fn = FindFunction(name);
  if (fn == nullptr) return;
  auto it = std::find_if(st.registrations.begin(), st.registrations.end(),
                         [&](const Registration& r) { return r.function == fn; });
  if (it == st.registrations.end()) return;
  RemoveRegistration(peer, static_cast<size_t>(it - st.registrations.begin()));
  // Walking from the back: a swap-remove moves an already visited job into slot i.
  for (size_t i = st.running.size(); i-- > 0;) {
    if (i < st.running.size() && st.running[i]->function_ == fn) Requeue(st.running[i]);
  }
}

void Broker::Impl::ResetAbilities(Peer& peer) {
  PeerState& st = peer.state_;
  while (!st.registrations.empty()) RemoveRegistration(peer, st.registrations.size() - 1);
  while (!st.running.empty()) Requeue(st.running.back());
}

// ---- Impl: clients

void Broker::Impl::AttachClient(Job* job, Peer& peer) {
  auto& waiting = peer.state_.waiting;
  job->clients_.push_back(Job::ClientRef{&peer, static_cast<uint32_t>(waiting.size())});
  waiting.push_back(job);
}

void Broker::Impl::RemoveWaitingSlot(Peer& peer, uint32_t slot) {
  auto& waiting = peer.state_.waiting;
  const auto last = static_cast<uint32_t>(waiting.size() - 1);
  if (slot != last) {
    Job* moved = waiting[last];
    waiting[slot] = moved;
    for (Job::ClientRef& c : moved->clients_) {
      if (c.peer == &peer && c.slot == last) {
        c.slot = slot;
        break;
      }
    }
  }
  waiting.pop_back();
}

void Broker::Impl::PopClient(Job* job) {
  const Job::ClientRef c = job->clients_.back();
  // Popped first so that, when the slot swap moves another entry of this same job, the fix-up
  // finds the remaining entry rather than the one being removed.
  job->clients_.pop_back();
  RemoveWaitingSlot(*c.peer, c.slot);
}

void Broker::Impl::OnClientLeft(Job* job, const Peer* detaching) {
  if (!job->Abandoned()) return;
  switch (job->state_) {
    case Job::State::kQueued:
    case Job::State::kWaiting:
      Destroy(job);  // §3.10: an abandoned queued job goes at once
      break;
    case Job::State::kRunning:
      // Runs on, results discarded, dropped instead of re-queued; stays coalescable.
      if (job->worker_ != detaching) job->worker_->JobWithdrawn(*job);
      break;
    case Job::State::kPending:
      assert(false && "pending jobs are background");
      break;
  }
}

// ---- Broker: forwarding

Broker::Broker(Options options, Clock& clock, storage::JobStore* store,
               std::function<void(int64_t deadline_ms)> schedule)
    : options_(std::move(options)),
      impl_(std::make_unique<Impl>(options_, clock, store, std::move(schedule))) {}

Broker::~Broker() = default;

void Broker::Attach(Peer& peer) { impl_->Attach(peer); }
void Broker::Detach(Peer& peer) { impl_->Detach(peer); }
void Broker::BeginShutdown() { impl_->stopping = true; }
void Broker::BeginDrain() { impl_->draining = true; }
bool Broker::draining() const { return impl_->draining; }

size_t Broker::JobsHoldingShutdown() const {
  size_t n = 0;
  for (const Job* job = impl_->all_jobs_.front(); job != nullptr;
       job = JobList<kCreationLink>::Next(job)) {
    if (job->state_ == Job::State::kPending || job->write_pending_ || job->running() ||
        !job->clients_.empty() || !job->durable_) {
      ++n;
    }
  }
  return n;
}

void Broker::SetClientId(Peer& peer, std::string_view id) {
  peer.state_.acted_as_worker = true;
  peer.state_.client_id.assign(id);
}

void Broker::SetExceptions(Peer& peer, bool on) { peer.state_.exceptions = on; }

void Broker::CanDo(Peer& peer, std::string_view function, int64_t timeout_ms) {
  impl_->CanDo(peer, function, timeout_ms);
}
void Broker::CantDo(Peer& peer, std::string_view function) { impl_->CantDo(peer, function); }
void Broker::ResetAbilities(Peer& peer) { impl_->ResetAbilities(peer); }
void Broker::PreSleep(Peer& peer) { impl_->PreSleep(peer); }

const Job* Broker::Grab(Peer& peer, GrabKind kind) {
  (void)kind;  // the caller picks JOB_ASSIGN / _UNIQ / _ALL; selection is the same
  return impl_->Grab(peer);
}

WorkResult Broker::Work(Peer& peer, protocol::PacketType type, std::string_view handle,
                        std::string_view payload, std::string_view numerator,
                        std::string_view denominator) {
  return impl_->Work(peer, type, handle, payload, numerator, denominator);
}

SubmitOutcome Broker::Submit(Peer& peer, const SubmitRequest& request) {
  return impl_->Submit(peer, request);
}
JobStatus Broker::GetStatus(std::string_view handle) const { return impl_->GetStatus(handle); }
JobStatus Broker::GetStatusUnique(std::string_view unique) const {
  return impl_->GetStatusUnique(unique);
}

bool Broker::PutBack(Peer& peer, std::string_view handle) { return impl_->PutBack(peer, handle); }

const Job* Broker::GrabHandle(Peer& peer, std::string_view handle) {
  Job* job = impl_->FindByHandle(handle);
  if (job == nullptr || !job->queued_now()) return nullptr;
  peer.state_.acted_as_worker = true;
  impl_->Assign(peer, job, 0);
  return job;
}

std::string Broker::FindQueued(std::string_view function, std::string_view unique) const {
  const Function* fn = impl_->FindFunction(function);
  if (fn == nullptr || unique.empty() || unique == "-") return {};
  const Job* job = impl_->by_unique_.Find(
      Impl::UniqueKey{fn, false, unique});
  if (job == nullptr || !job->queued_now()) return {};
  return std::string(job->handle());
}

CancelResult Broker::CancelJob(std::string_view handle) { return impl_->CancelJob(handle); }
void Broker::CreateFunction(std::string_view name) {
  impl_->GetOrCreateFunction(name)->pinned_ = true;
}
DropResult Broker::DropFunction(std::string_view name) { return impl_->DropFunction(name); }
void Broker::SetMaxQueue(std::string_view name, const std::array<uint32_t, 3>& limits) {
  impl_->SetMaxQueue(name, limits);
}

const Function* Broker::FindFunction(std::string_view name) const {
  return impl_->FindFunction(name);
}

std::vector<const Function*> Broker::FunctionsByName() const { return impl_->FunctionsByName(); }
size_t Broker::FunctionCount() const { return impl_->functions_.size(); }
const Function* Broker::FunctionAfter(std::string_view after, bool inclusive) const {
  const auto& index = impl_->by_name_;
  const auto it = inclusive ? index.lower_bound(after) : index.upper_bound(after);
  return it == index.end() ? nullptr : *it;
}
Broker::RetiredCounts Broker::retired() const { return impl_->retired_; }
std::vector<const Job*> Broker::JobsInCreationOrder() const { return impl_->JobsInCreationOrder(); }
std::vector<const Peer*> Broker::WorkerPeers() const { return impl_->WorkerPeers(); }

Broker::WorkerKey Broker::KeyOf(const Peer& peer) { return {peer.Fd(), peer.state().serial}; }

std::vector<const Peer*> Broker::WorkerPeersAfter(const WorkerKey* after, size_t max) const {
  auto key_less = [](const WorkerKey& a, const WorkerKey& b) {
    return a.fd != b.fd ? a.fd < b.fd : a.serial < b.serial;
  };
  auto peer_less = [&](const Peer* a, const Peer* b) { return key_less(KeyOf(*a), KeyOf(*b)); };
  // A max-heap of the `max` smallest keys after `after`: one pass, O(log max) per peer.
  std::vector<const Peer*> out;
  if (max == 0) return out;
  for (const Peer* peer : impl_->peers_) {
    if (!peer->state().acted_as_worker) continue;
    if (after != nullptr && !key_less(*after, KeyOf(*peer))) continue;
    if (out.size() < max) {
      out.push_back(peer);
      std::push_heap(out.begin(), out.end(), peer_less);
    } else if (peer_less(peer, out.front())) {
      std::pop_heap(out.begin(), out.end(), peer_less);
      out.back() = peer;
      std::push_heap(out.begin(), out.end(), peer_less);
    }
  }
  std::sort_heap(out.begin(), out.end(), peer_less);
  return out;
}

Broker::JobCursor::JobCursor(const Broker& broker)
    : impl_(broker.impl_.get()), next_(impl_->all_jobs_.front()) {
  impl_->cursors_.push_back(this);
}

Broker::JobCursor::~JobCursor() {
  auto& cursors = impl_->cursors_;
  cursors.erase(std::find(cursors.begin(), cursors.end(), this));
}

const Job* Broker::JobCursor::Next() {
  while (next_ != nullptr && next_->state_ == Job::State::kPending) {
    next_ = JobList<kCreationLink>::Next(next_);
  }
  const Job* job = next_;
  if (job != nullptr) next_ = JobList<kCreationLink>::Next(job);
  return job;
}
size_t Broker::LiveJobCount() const { return impl_->by_id_.size(); }
size_t Broker::TakeHighWater() {
  const size_t now = impl_->by_id_.size() + impl_->functions_.size();
  const size_t high = std::max(impl_->high_water_, now);
  impl_->high_water_ = now;
  return high;
}

void Broker::ReleaseCaches() {
  impl_->free_jobs_.clear();
  impl_->free_jobs_.shrink_to_fit();
  impl_->free_writes_.clear();
  impl_->free_writes_.shrink_to_fit();
}

size_t Broker::JobBytes() const { return impl_->job_bytes_; }

void Broker::RunTimers() { impl_->RunTimers(); }
std::optional<int64_t> Broker::NextTimerDeadline() const { return impl_->NextTimerDeadline(); }
void Broker::Restore(storage::JobRecord&& record) { impl_->Restore(std::move(record)); }
void Broker::SetHandleFloor(uint64_t id) { impl_->SetHandleFloor(id); }

}  // namespace roundhouse::broker
