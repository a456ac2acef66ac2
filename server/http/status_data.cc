#include "server/http/status_data.h"

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

std::vector<FunctionInfo> CollectFunctions(const broker::Broker& broker) {
  std::vector<FunctionInfo> out;
  for (const broker::Function* fn : broker.FunctionsByName()) {
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
    out.push_back(std::move(info));
  }
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
