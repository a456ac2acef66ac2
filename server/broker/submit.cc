// Submission, coalescing (§3.3), maxqueue (§3.12), durable writes (§6.1), handles (§3.2) and
// start-up replay.

#include <algorithm>
#include <cassert>
#include <charconv>
#include <utility>

#include "base/log.h"
#include "base/text.h"
#include "server/broker/broker_impl.h"

namespace roundhouse::broker {
namespace {

SubmitOutcome Immediate(std::string_view handle) {
  SubmitOutcome out;
  out.reply.ok = true;
  out.reply.handle = handle;
  return out;
}

SubmitOutcome Refused(std::string_view code, std::string_view text) {
  SubmitOutcome out;
  out.reply.error_code = code;
  out.reply.error_text = text;
  return out;
}

// The decimal number after the last ':' of a handle; 0 if there is none or it is malformed
// (leading zeros included, so "H:x:012" never aliases job 12).
uint64_t HandleNumber(std::string_view handle) {
  const size_t colon = handle.rfind(':');
  if (colon == std::string_view::npos) return 0;
  const std::string_view digits = handle.substr(colon + 1);
  if (digits.empty() || (digits.size() > 1 && digits[0] == '0')) return 0;
  return ParseDecimal<uint64_t>(digits).value_or(0);
}

}  // namespace

bool Broker::Impl::MakeUniqueKey(const Function* fn, std::string_view unique, std::string_view data,
                                 UniqueKey* key) {
  if (unique.empty()) return false;
  if (unique == "-") {
    if (data.empty()) return false;
    *key = UniqueKey{fn, true, data};
  } else {
    *key = UniqueKey{fn, false, unique};
  }
  return true;
}

Job* Broker::Impl::FindByHandle(std::string_view handle) const {
  const uint64_t id = HandleNumber(handle);
  if (id == 0) return nullptr;
  Job* job = by_id_.Find(id);
  return job != nullptr && job->handle() == handle ? job : nullptr;
}

uint64_t Broker::Impl::NextId() {
  if (!counter_started_) {
    counter_started_ = true;
    const int64_t now = clock.UnixMicros();
    next_id_ = std::max({floor_, max_restored_ + 1, now > 0 ? static_cast<uint64_t>(now) : 1});
  }
  const uint64_t id = next_id_++;
  if (store != nullptr && id >= ceiling_) {
    ceiling_ = id + kHandleCeilingBlock;
    store->SetHandleCeiling(ceiling_);
  }
  return id;
}

void Broker::Impl::SetHandleFloor(uint64_t id) {
  floor_ = std::max(floor_, id);
  if (counter_started_) next_id_ = std::max(next_id_, id);
}

Job* Broker::Impl::CreateJob(Function* fn, uint64_t id, std::string_view handle,
                             std::string_view unique, std::string_view reducer,
                             std::string_view data, Priority priority, int64_t when) {
  Job* job = AllocJob();
  std::string& b = job->bytes_;
  b.reserve(data.size() + handle.size() + 1 + unique.size() + reducer.size());
  b.append(data);
  b.append(handle);
  b.push_back('\0');
  b.append(unique);
  b.append(reducer);
  job_bytes_ += b.size();
  job->data_len_ = data.size();
  job->handle_len_ = static_cast<uint32_t>(handle.size());
  job->unique_len_ = static_cast<uint32_t>(unique.size());
  job->reducer_len_ = static_cast<uint32_t>(reducer.size());
  job->id_ = id;
  job->function_ = fn;
  job->priority_ = priority;
  job->when_ = when;
  job->created_ms_ = clock.MonotonicMs();
  by_id_.Insert(job);
  NoteGrowth();
  all_jobs_.PushBack(job);
  fn->jobs_.PushBack(job);
  return job;
}

SubmitOutcome Broker::Impl::Submit(Peer& peer, const SubmitRequest& r) {
  assert(peer.state_.attached);
  if (draining) return Refused("SHUTTING_DOWN", "Server is shutting down");
  if (r.unique.size() > options.max_unique || r.reducer.size() > options.max_unique) {
    return Refused(kArgumentTooLarge, kUniqueTooLarge);
  }
  Function* fn = GetOrCreateFunction(r.function);
  UniqueKey key{};
  const bool coalescable = MakeUniqueKey(fn, r.unique, r.data, &key);
  if (coalescable) {
    if (Job* job = by_unique_.Find(key)) return Coalesce(peer, job, r);
  }
  const size_t p = PriorityIndex(r.priority);
  if (fn->max_queue_[p] > 0 && fn->total() + fn->pending_ >= fn->max_queue_[p]) {
    return Refused(kQueueError, kQueueFull);
  }

  const uint64_t id = NextId();
  scratch_.assign(options.handle_prefix);
  scratch_.push_back(':');
  char digits[24];
  const auto res = std::to_chars(std::begin(digits), std::end(digits), id);
  scratch_.append(digits, res.ptr);
  Job* job = CreateJob(fn, id, scratch_, r.unique, r.reducer, r.data, r.priority, r.when);
  ++fn->submitted_;
  if (coalescable) {
    by_unique_.Insert(job);
    job->indexed_ = true;
  }

  if (r.background) {
    job->background_ = true;
    if (store != nullptr) {
      // Invisible and not grabbable until the row is committed (§6.1).
      job->state_ = Job::State::kPending;
      ++fn->pending_;
      StartWrite(job, /*creates=*/true);
      return Pend(peer, job, /*foreground=*/false);
    }
  } else {
    AttachClient(job, peer);
  }
  MakeRunnable(job);
  return Immediate(job->handle());
}

SubmitOutcome Broker::Impl::Coalesce(Peer& peer, Job* job, const SubmitRequest& r) {
  // Onto a job whose creating write is in flight: answered when it lands (it may fail).
  if (job->state_ == Job::State::kPending) return Pend(peer, job, !r.background);
  if (!r.background) {
    AttachClient(job, peer);
    return Immediate(job->handle());
  }
  if (!job->background_) {
    if (store == nullptr) {
      job->background_ = true;
    } else {
      // §3.3: a background submit onto a not-yet-durable job is acknowledged only after the
      // job is written durably.
      if (!job->write_pending_) StartWrite(job, /*creates=*/false);
      return Pend(peer, job, /*foreground=*/false);
    }
  }
  return Immediate(job->handle());
}

SubmitOutcome Broker::Impl::Pend(Peer& peer, Job* job, bool foreground) {
  assert(job->write_pending_);
  const uint64_t ticket = peer.next_ticket_++;
  Peer::PendingSubmit p;
  p.ticket = ticket;
  p.write_id = job->id_;
  peer.pending_submits_.push_back(std::move(p));
  writes_.at(job->id_).waiters.push_back(Waiter{&peer, ticket, foreground});
  SubmitOutcome out;
  out.pending = true;
  out.ticket = ticket;
  return out;
}

void Broker::Impl::StartWrite(Job* job, bool creates) {
  assert(store != nullptr && !job->write_pending_);
  job->write_pending_ = true;
  PendingWrite* pw;
  if (!free_writes_.empty()) {
    auto node = std::move(free_writes_.back());
    free_writes_.pop_back();
    node.key() = job->id_;
    auto ins = writes_.insert(std::move(node));
    assert(ins.inserted);
    pw = &ins.position->second;
  } else {
    pw = &writes_[job->id_];
  }
  PendingWrite& w = *pw;
  w.job = job;
  w.creates = creates;
  w.handle.assign(job->handle());
  w.waiters.clear();

  storage::JobRecord rec = store->NewRecord();  // maybe recycled: every field is assigned
  rec.id = job->id_;
  rec.handle.assign(job->handle());
  rec.function.assign(job->function_->name());
  rec.unique.assign(job->unique());
  rec.reducer.assign(job->reducer());
  rec.data.assign(job->data());
  rec.priority = static_cast<uint8_t>(job->priority_);
  rec.when = job->when_;
  WriteToken* token = write_token_;
  ++token->outstanding;
  const uint64_t id = job->id_;
  store->Add(std::move(rec), [token, id](const Status& status) {
    --token->outstanding;
    if (token->impl != nullptr) {
      token->impl->OnWriteDone(id, status);
    } else if (token->outstanding == 0) {
      delete token;
    }
  });
}

void Broker::Impl::DetachWrite(Job* job) {
  if (!job->write_pending_) return;
  writes_.at(job->id_).job = nullptr;
  job->write_pending_ = false;
}

void Broker::Impl::OnWriteDone(uint64_t id, const Status& status) {
  auto it = writes_.find(id);
  assert(it != writes_.end());
  auto node = writes_.extract(it);
  FinishWrite(node.mapped(), status);
  if (free_writes_.size() < kMaxFreeWrites) free_writes_.push_back(std::move(node));
  // As for functions_ (FreeFunction): 200k pipelined writes must not leave their buckets.
  if (writes_.bucket_count() > kMinShrinkBuckets && writes_.size() * 8 < writes_.bucket_count()) {
    writes_.rehash(writes_.size() * 2);
  }
}

void Broker::Impl::FinishWrite(PendingWrite& w, const Status& status) {
  Job* job = w.job;
  if (job != nullptr) job->write_pending_ = false;

  if (status.ok()) {
    if (job != nullptr) {
      job->durable_ = true;
      job->background_ = true;
      if (w.creates) {
        --job->function_->pending_;
        MakeRunnable(job);
      }
      for (const Waiter& waiter : w.waiters) {
        if (waiter.foreground) AttachClient(job, *waiter.peer);
      }
    }
    for (const Waiter& waiter : w.waiters) ResolveTicket(waiter, true, w.handle, {});
    return;
  }

  RH_LOG(kError, "Durable write failed for job %s: %s", w.handle.c_str(), status.message().c_str());
  for (const Waiter& waiter : w.waiters) ResolveTicket(waiter, false, {}, status.message());
  if (job == nullptr) return;
  if (w.creates) {
    Destroy(job);  // §6.1: no job exists afterwards
  } else {
    OnClientLeft(job, nullptr);  // still foreground; maybe nobody waits for it any more
  }
}

void Broker::Impl::ResolveTicket(Waiter waiter, bool ok, std::string_view handle,
                                 std::string_view error_text) {
  Peer& peer = *waiter.peer;
  auto& pending = peer.pending_submits_;
  // Tickets are issued consecutively and leave only from the front, so a ticket's place is its
  // distance from the front's: O(1) however many replies this peer is still owed.
  assert(!pending.empty() && waiter.ticket >= pending.front().ticket);
  const auto it =
      pending.begin() + static_cast<std::ptrdiff_t>(waiter.ticket - pending.front().ticket);
  assert(it < pending.end() && it->ticket == waiter.ticket && !it->ready);
  it->ready = true;
  it->ok = ok;
  it->handle.assign(handle);
  it->error_text.assign(error_text);
  // Deliver in ticket order: a later ticket waits for every earlier one.
  while (!pending.empty() && pending.front().ready) {
    Peer::PendingSubmit done = std::move(pending.front());
    pending.pop_front();
    SubmitReply reply;
    reply.ok = done.ok;
    if (done.ok) {
      reply.handle = done.handle;
    } else {
      reply.error_code = kQueueError;
      reply.error_text = done.error_text;
    }
    peer.SubmitDone(done.ticket, reply);
  }
}

void Broker::Impl::Restore(storage::JobRecord&& record) {
  if (record.id == 0 || by_id_.Find(record.id) != nullptr) {
    RH_LOG(kError, "Skipping durable job with invalid or duplicate id %llu: %s",
           static_cast<unsigned long long>(record.id), record.handle.c_str());
    return;
  }
  Function* fn = GetOrCreateFunction(record.function);
  std::string handle = std::move(record.handle);
  if (HandleNumber(handle) != record.id || handle.size() > kMaxHandle) {
    handle = options.handle_prefix + ":" + std::to_string(record.id);
  }
  const Priority priority =
      record.priority <= 2 ? static_cast<Priority>(record.priority) : Priority::kNormal;
  Job* job = CreateJob(fn, record.id, handle, record.unique, record.reducer, record.data, priority,
                       record.when);
  job->background_ = true;
  job->durable_ = true;
  UniqueKey key{};
  if (MakeUniqueKey(fn, job->unique(), job->data(), &key) && by_unique_.Find(key) == nullptr) {
    by_unique_.Insert(job);
    job->indexed_ = true;
  }
  max_restored_ = std::max(max_restored_, record.id);
  if (counter_started_) next_id_ = std::max(next_id_, record.id + 1);
  MakeRunnable(job);
}

}  // namespace roundhouse::broker
