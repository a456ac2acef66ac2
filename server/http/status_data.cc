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

namespace {

FunctionInfo InfoOf(const broker::Function* fn) {
  FunctionInfo info;
  info.name = std::string(fn->name());
  for (size_t p = 0; p < broker::kPriorityCount; ++p) {
    info.queued[p] = fn->queued(static_cast<broker::Priority>(p));
  }
  info.running = fn->running();
  info.workers = fn->worker_count();
  info.submitted = fn->submitted();
  info.completed = fn->completed();
  info.failed = fn->failed();
  return info;
}

void AddTo(FunctionInfo* sum, const broker::Function* fn) {
  for (size_t p = 0; p < broker::kPriorityCount; ++p) {
    sum->queued[p] += fn->queued(static_cast<broker::Priority>(p));
  }
  sum->running += fn->running();
  sum->workers += fn->worker_count();
  sum->submitted += fn->submitted();
  sum->completed += fn->completed();
  sum->failed += fn->failed();
}

}  // namespace

std::vector<FunctionInfo> CollectFunctions(const broker::Broker& broker) {
  std::vector<FunctionInfo> out;
  for (const broker::Function* fn : broker.FunctionsByName()) out.push_back(InfoOf(fn));
  return out;
}

std::vector<FunctionInfo> CollectTopFunctions(const broker::Broker& broker, size_t max,
                                              FunctionInfo* other) {
  struct Ranked {
    uint64_t activity;
    uint64_t submitted;
    const broker::Function* fn;
  };
  std::vector<Ranked> ranked;
  ranked.reserve(broker.FunctionCount());
  for (const broker::Function* fn : broker.FunctionsByName()) {
    uint64_t queued = 0;
    for (size_t p = 0; p < broker::kPriorityCount; ++p) {
      queued += fn->queued(static_cast<broker::Priority>(p));
    }
    ranked.push_back(Ranked{queued + fn->running() + fn->worker_count(), fn->submitted(), fn});
  }
  // Most active first; ties by jobs submitted, then by name, so the choice is stable.
  auto more_active = [](const Ranked& a, const Ranked& b) {
    if (a.activity != b.activity) return a.activity > b.activity;
    if (a.submitted != b.submitted) return a.submitted > b.submitted;
    return a.fn->name() < b.fn->name();
  };
  const size_t shown = std::min(max, ranked.size());
  if (shown < ranked.size()) {
    std::nth_element(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(shown),
                     ranked.end(), more_active);
  }
  *other = FunctionInfo{};
  const broker::Broker::RetiredCounts retired = broker.retired();
  other->submitted = retired.submitted;
  other->completed = retired.completed;
  other->failed = retired.failed;
  for (size_t i = shown; i < ranked.size(); ++i) AddTo(other, ranked[i].fn);
  ranked.resize(shown);
  std::sort(ranked.begin(), ranked.end(),
            [](const Ranked& a, const Ranked& b) { return a.fn->name() < b.fn->name(); });
  std::vector<FunctionInfo> out;
  out.reserve(shown);
  for (const Ranked& r : ranked) out.push_back(InfoOf(r.fn));
  return out;
}

std::vector<WorkerInfo> CollectWorkers(const broker::Broker& broker) {
  std::vector<WorkerInfo> out;
  for (const broker::Peer* peer : broker.WorkerPeers()) {
    const broker::PeerState& state = peer->state();
    WorkerInfo info;
    info.fd = peer->Fd();
    info.address = std::string(peer->Address());
    info.client_id = state.client_id;
    for (const broker::Registration& r : state.registrations) {
      info.functions.emplace_back(r.function->name());
    }
    for (const broker::Job* job : state.running) {
      if (!job->cancelled()) info.running.emplace_back(job->handle());  // cancelled: gone
    }
    info.sleeping = state.sleeping;
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<JobInfo> CollectJobs(const broker::Broker& broker, const std::string& function,
                                 size_t limit, int64_t now_ms, int64_t now_unix,
                                 size_t* matched) {
  std::vector<JobInfo> out;
  *matched = 0;
  for (const broker::Job* job : broker.JobsInCreationOrder()) {
    if (!function.empty() && job->function_name() != function) continue;
    if (job->cancelled()) continue;  // gone from every count at once (admin `cancel job`)
    ++*matched;
    if (out.size() >= limit) continue;
    JobInfo info;
    info.handle = std::string(job->handle());
    info.function = std::string(job->function_name());
    info.unique = std::string(job->unique());
    info.priority = std::string(PriorityName(job->priority()));
    if (job->running()) {
      info.state = "running";
    } else if (job->when() > now_unix) {
      info.state = "scheduled";
    } else {
      info.state = "queued";
    }
    info.background = job->background();
    info.ignored = job->ignored();
    info.age_ms = now_ms - job->created_ms();
    info.when = job->when();
    info.retries = job->retries();
    if (const broker::Peer* worker = job->worker()) {
      const std::string& id = worker->state().client_id;
      info.worker = id != "-" ? id : std::string(worker->Address());
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace roundhouse::server::http
