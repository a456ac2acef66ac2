#include "server/http/status_data.h"

#include <algorithm>

namespace roundhouse::server::http {

std::string_view PriorityName(broker::Priority p) {
  switch (p) {
    case broker::Priority::kHigh:
      return "high";
    case broker::Priority::kNormal:
      return "normal";
    case broker::Priority::kLow:
      return "low";
  }
  return "normal";
}

FunctionInfo InfoOf(const broker::Function& fn) {
  FunctionInfo info;
  info.name = std::string(fn.name());
  for (size_t p = 0; p < broker::kPriorityCount; ++p) {
    info.queued[p] = fn.queued(static_cast<broker::Priority>(p));
  }
  info.running = fn.running();
  info.workers = fn.worker_count();
  info.submitted = fn.submitted();
  info.completed = fn.completed();
  info.failed = fn.failed();
  return info;
}

namespace {

void AddTo(FunctionInfo* sum, const FunctionInfo& f) {
  for (size_t p = 0; p < broker::kPriorityCount; ++p) sum->queued[p] += f.queued[p];
  sum->running += f.running;
  sum->workers += f.workers;
  sum->submitted += f.submitted;
  sum->completed += f.completed;
  sum->failed += f.failed;
}

}  // namespace

bool TopFunctions::MoreActive(const Ranked& a, const Ranked& b) {
  if (a.activity != b.activity) return a.activity > b.activity;
  if (a.submitted != b.submitted) return a.submitted > b.submitted;
  return a.info.name < b.info.name;
}

void TopFunctions::Add(const broker::Function& fn) {
  ++seen_;
  Ranked r;
  r.info = InfoOf(fn);
  r.activity =
      r.info.queued[0] + r.info.queued[1] + r.info.queued[2] + r.info.running + r.info.workers;
  r.submitted = r.info.submitted;
  if (kept_.size() < max_) {
    kept_.push_back(std::move(r));
    std::push_heap(kept_.begin(), kept_.end(), MoreActive);
    return;
  }
  if (kept_.empty() || !MoreActive(r, kept_.front())) {
    AddTo(&other_, r.info);
    return;
  }
  std::pop_heap(kept_.begin(), kept_.end(), MoreActive);
  AddTo(&other_, kept_.back().info);
  kept_.back() = std::move(r);
  std::push_heap(kept_.begin(), kept_.end(), MoreActive);
}

std::vector<FunctionInfo> TopFunctions::Take(const broker::Broker::RetiredCounts& retired,
                                             FunctionInfo* other) {
  *other = std::move(other_);
  other->submitted += retired.submitted;
  other->completed += retired.completed;
  other->failed += retired.failed;
  std::sort(kept_.begin(), kept_.end(),
            [](const Ranked& a, const Ranked& b) { return a.info.name < b.info.name; });
  std::vector<FunctionInfo> out;
  out.reserve(kept_.size());
  for (Ranked& r : kept_) out.push_back(std::move(r.info));
  kept_.clear();
  return out;
}

std::vector<FunctionInfo> CollectFunctions(const broker::Broker& broker) {
  std::vector<FunctionInfo> out;
  for (const broker::Function* fn : broker.FunctionsByName()) out.push_back(InfoOf(*fn));
  return out;
}

std::vector<FunctionInfo> CollectTopFunctions(const broker::Broker& broker, size_t max,
                                              FunctionInfo* other) {
  TopFunctions top(max);
  for (const broker::Function* fn : broker.FunctionsByName()) top.Add(*fn);
  return top.Take(broker.retired(), other);
}

WorkerInfo InfoOf(const broker::Peer& peer) {
  const broker::PeerState& state = peer.state();
  WorkerInfo info;
  info.fd = peer.Fd();
  info.address = std::string(peer.Address());
  info.client_id = state.client_id;
  for (const broker::Registration& r : state.registrations) {
    info.functions.emplace_back(r.function->name());
  }
  for (const broker::Job* job : state.running) {
    if (!job->cancelled()) info.running.emplace_back(job->handle());  // cancelled: gone
  }
  info.sleeping = state.sleeping;
  return info;
}

bool JobListed(const broker::Job& job, const std::string& function) {
  if (!function.empty() && job.function_name() != function) return false;
  return !job.cancelled();  // gone from every count at once (admin `cancel job`)
}

JobInfo InfoOf(const broker::Job& job, int64_t now_ms, int64_t now_unix) {
  JobInfo info;
  info.handle = std::string(job.handle());
  info.function = std::string(job.function_name());
  info.unique = std::string(job.unique());
  info.priority = std::string(PriorityName(job.priority()));
  if (job.running()) {
    info.state = "running";
  } else if (job.when() > now_unix) {
    info.state = "scheduled";
  } else {
    info.state = "queued";
  }
  info.background = job.background();
  info.ignored = job.ignored();
  info.age_ms = now_ms - job.created_ms();
  info.when = job.when();
  info.retries = job.retries();
  if (const broker::Peer* worker = job.worker()) {
    const std::string& id = worker->state().client_id;
    info.worker = id != "-" ? id : std::string(worker->Address());
  }
  return info;
}

std::vector<WorkerInfo> CollectWorkers(const broker::Broker& broker) {
  std::vector<WorkerInfo> out;
  for (const broker::Peer* peer : broker.WorkerPeers()) out.push_back(InfoOf(*peer));
  return out;
}

std::vector<JobInfo> CollectJobs(const broker::Broker& broker, const std::string& function,
                                 size_t limit, int64_t now_ms, int64_t now_unix,
                                 size_t* matched) {
  std::vector<JobInfo> out;
  *matched = 0;
  for (const broker::Job* job : broker.JobsInCreationOrder()) {
    if (!JobListed(*job, function)) continue;
    ++*matched;
    if (out.size() < limit) out.push_back(InfoOf(*job, now_ms, now_unix));
  }
  return out;
}

}  // namespace roundhouse::server::http
