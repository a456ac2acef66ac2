// Admin operations (§3.11, §4.3) and status queries (GET_STATUS*, listings).

#include <algorithm>
#include <cassert>

#include "base/text.h"
#include "protocol/admin_line.h"
#include "server/broker/broker_impl.h"

namespace roundhouse::broker {

using protocol::PacketType;

CancelResult Broker::Impl::CancelJob(std::string_view handle) {
  Job* job = FindByHandle(handle);
  if (job == nullptr || job->state_ == Job::State::kPending) return CancelResult::kUnknownJob;
  const bool already_withdrawn = job->ignored();
  Forward(job, PacketType::kWorkFail, job->handle());
  if (job->durable_ || job->write_pending_) store->Remove(job->id_);
  job->durable_ = false;
  DetachWrite(job);
  if (job->state_ != Job::State::kRunning) {
    Destroy(job);
    return CancelResult::kOk;
  }
  // Running: the worker is not interrupted; its later WORK_* are accepted and discarded, and its
  // end (or its departure) frees the job.
  while (!job->clients_.empty()) PopClient(job);
  if (job->indexed_) {
    by_unique_.Erase(job);
    job->indexed_ = false;
  }
  // Out of every count and status reply now (`status`, GET_STATUS, /api/*); Unassign() knows not
  // to count it out twice.
  --job->function_->running_;
  job->cancelled_ = true;
  if (!already_withdrawn) job->worker_->JobWithdrawn(*job);
  return CancelResult::kOk;
}

DropResult Broker::Impl::DropFunction(std::string_view name) {
  // Exact-case match wins; otherwise the case-insensitive match (lowest name if several).
  Function* fn = FindFunction(name);
  if (fn == nullptr) {
    for (const auto& [key, candidate] : functions_) {
      if (EqualsIgnoreCase(key, name) && (fn == nullptr || key < fn->name())) {
        fn = candidate.get();
      }
    }
  }
  if (fn == nullptr) return DropResult::kNotFound;
  if (fn->worker_count() > 0 || fn->running_ > 0) return DropResult::kHasWorkersOrRunning;
  // A cancelled job its worker still holds refers to the function too.
  if (!fn->jobs_.empty() && fn->total() + fn->pending_ == 0) {
    return DropResult::kHasWorkersOrRunning;
  }
  if (fn->total() > 0 || fn->pending_ > 0) return DropResult::kHasQueuedJobs;
  FreeFunction(fn);
  return DropResult::kOk;
}

void Broker::Impl::SetMaxQueue(std::string_view name, const std::array<uint32_t, 3>& limits) {
  if (Function* fn = FindFunction(name)) {
    fn->max_queue_ = limits;
    MaybeFree(fn);  // limits back to 0 on an empty function: nothing keeps it any more
  }
}

namespace {

JobStatus StatusOf(const Job* job) {
  JobStatus s;
  s.known = true;
  s.running = job->running();
  s.numerator = job->numerator();
  s.denominator = job->denominator();
  s.clients = static_cast<uint32_t>(job->client_count());
  return s;
}

}  // namespace

JobStatus Broker::Impl::GetStatus(std::string_view handle) const {
  const Job* job = FindByHandle(handle);
  if (job == nullptr || job->state_ == Job::State::kPending || job->cancelled_) return JobStatus{};
  return StatusOf(job);
}

JobStatus Broker::Impl::GetStatusUnique(std::string_view unique) const {
  // The oldest visible job with this unique, across functions (§2, type 41).
  const Job* best = nullptr;
  if (unique.empty() || unique == "-") {
    // Not indexed by these bytes (never coalesced, or coalesced on DATA): scan.
    for (const Job* job = all_jobs_.front(); job != nullptr;
         job = JobList<kCreationLink>::Next(job)) {
      if (job->state_ != Job::State::kPending && !job->cancelled_ && job->unique() == unique) {
        best = job;
        break;
      }
    }
  } else {
    for (const auto& [name, fn] : functions_) {
      const Job* job = by_unique_.Find(UniqueKey{fn.get(), false, unique});
      if (job != nullptr && job->state_ != Job::State::kPending &&
          (best == nullptr || job->id_ < best->id_)) {
        best = job;
      }
    }
  }
  return best == nullptr ? JobStatus{} : StatusOf(best);
}

std::vector<const Function*> Broker::Impl::FunctionsByName() const {
  // by_name_ orders by std::string_view, which compares as unsigned bytes (char_traits<char>).
  return std::vector<const Function*>(by_name_.begin(), by_name_.end());
}

std::vector<const Job*> Broker::Impl::JobsInCreationOrder() const {
  std::vector<const Job*> out;
  out.reserve(by_id_.size());
  for (const Job* job = all_jobs_.front(); job != nullptr;
       job = JobList<kCreationLink>::Next(job)) {
    if (job->state_ != Job::State::kPending) out.push_back(job);
  }
  return out;
}

std::vector<const Peer*> Broker::Impl::WorkerPeers() const {
  std::vector<const Peer*> out;
  for (const Peer* peer : peers_) {
    if (peer->state_.acted_as_worker) out.push_back(peer);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Peer* a, const Peer* b) { return a->Fd() < b->Fd(); });
  return out;
}

}  // namespace roundhouse::broker
