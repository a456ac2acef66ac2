// The master's job and function tables (see master_view.h): the job list (R2) applied with the
// include/exclude filters and flyweight labels, the function table with its routes and listed
// names (doc/jenkins.md §1.2, §1.3, §4.3), the functions blocked by a back-off or D6, and the
// executor pseudo-workers with their registrations (V1-V5). The polls themselves are in
// master_view.cc.

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/log.h"
#include "jenkins/master_view.h"

namespace roundhouse::jenkins {

// ---- applying the job list (R2)

void MasterView::ApplyJobs(std::vector<JobInfo> jobs) {
  jobs_.clear();
  job_index_.clear();
  for (JobInfo& job : jobs) {
    if (job_include_ && !job_include_->Search(job.full_name)) continue;
    if (job_exclude_ && job_exclude_->Search(job.full_name)) continue;
    if (job.flyweight()) {
      auto it = settings_.flyweight_labels.find(job.full_name);
      job.label_expression = it != settings_.flyweight_labels.end()
                                 ? std::optional<std::string>(it->second)
                                 : std::nullopt;
    }
    job_index_[job.full_name] = jobs_.size();
    jobs_.push_back(std::move(job));
  }
  const bool first = !have_jobs_;
  have_jobs_ = true;
  if (first) {
    for (const JobInfo& job : jobs_) {
      if (job.parameters.empty()) continue;  // uses W2: nothing to pin or tag
      if (job.FindParameter(settings_.unique_param) == nullptr) {
        RH_LOG(kInfo,
               "jenkins master=%s: job %s has no parameter %s: Jenkins may merge identical "
               "builds of it",
               settings_.name.c_str(), job.full_name.c_str(), settings_.unique_param.c_str());
      }
    }
  }
  Recompute();
  host_.RequestRound();
}

// ---- the function table, its routes and the pseudo-workers

void MasterView::Recompute() {
  if (!have_jobs_ || !have_computers_ || closing_) return;
  FunctionTable table = DeriveTable();
  for (size_t i = 0; i < nodes_.size(); ++i) nodes_[i].functions = std::move(table.advertised[i]);
  RebuildRoutes(table);
  // V1: the broker lists every derived name for good.
  for (const std::string& name : table.listed) {
    if (listed_.insert(name).second) broker_.CreateFunction(name);
  }
  UpdatePseudoWorkers();
  ReconcileRegistrations();
}

// The function table of the current jobs and nodes (functions.h), its refused names and
// collisions logged once each, and the admin-set name filter applied.
FunctionTable MasterView::DeriveTable() {
  std::vector<JenkinsJob> jobs;
  jobs.reserve(jobs_.size());
  for (const JobInfo& j : jobs_) {
    jobs.push_back({j.name, j.full_name, j.label_expression, j.enabled()});
  }
  std::vector<JenkinsNode> nodes;
  nodes.reserve(nodes_.size());
  for (const Node& n : nodes_) {
    JenkinsNode jn;
    jn.name = n.info.name;
    jn.labels = n.labels;
    // A node whose mode is still unknown (R5 not answered yet) is taken as EXCLUSIVE: it
    // registers its labelled jobs at once, and unlabelled ones (which an EXCLUSIVE node must
    // never take) once R5 says NORMAL.
    jn.mode = n.exclusive || !n.mode_known ? NodeMode::kExclusive : NodeMode::kNormal;
    jn.offline = n.info.offline;
    nodes.push_back(std::move(jn));
  }
  const AtomRule rule =
      settings_.pin_mode == PinMode::kLabelOnly ? AtomRule::kLabelOnly : AtomRule::kPerNode;
  FunctionTable table = DeriveFunctionTable(jobs, nodes, settings_.function_naming, rule);
  for (const std::string& name : table.refused) {
    if (logged_once_.insert("refused:" + name).second) {
      RH_LOG(kWarning,
             "jenkins master=%s: not registering '%s': function names cannot contain "
             "spaces or control characters",
             settings_.name.c_str(), name.c_str());
    }
  }
  for (const NameCollision& c : table.collisions) {
    if (logged_once_.insert("collision:" + c.short_name).second) {
      RH_LOG(kWarning,
             "jenkins master=%s: %zu jobs are named '%s'; build:%s runs %s (set "
             "function_naming = full to reach the others)",
             settings_.name.c_str(), c.losers.size() + 1, c.short_name.c_str(),
             c.short_name.c_str(), c.owner.c_str());
    }
  }
  if (name_filter_) {
    auto drop = [&](const std::string& name) { return !name_filter_->Search(name); };
    std::erase_if(table.listed, drop);
    for (auto& names : table.advertised) std::erase_if(names, drop);
  }
  return table;
}

// Routes: the job each listed name triggers. A name is "build:<part>" or "build:<part>:<atom>";
// the part may itself contain ':', so try every split against the job parts.
void MasterView::RebuildRoutes(const FunctionTable& table) {
  std::map<std::string, std::string, std::less<>> part_to_job;
  std::set<std::string> losers;
  for (const NameCollision& c : table.collisions) losers.insert(c.losers.begin(), c.losers.end());
  for (const JobInfo& j : jobs_) {
    if (losers.count(j.full_name) != 0) continue;
    const std::string& part =
        settings_.function_naming == FunctionNaming::kFull ? j.full_name : j.name;
    part_to_job.emplace(part, j.full_name);
  }
  routes_.clear();
  for (const std::string& name : table.listed) {
    std::string_view rest = std::string_view(name).substr(6);  // after "build:"
    auto exact = part_to_job.find(rest);
    if (exact != part_to_job.end()) {
      routes_[name] = exact->second;
      continue;
    }
    for (size_t colon = rest.rfind(':'); colon != std::string_view::npos && colon > 0;
         colon = rest.rfind(':', colon - 1)) {
      auto it = part_to_job.find(rest.substr(0, colon));
      if (it != part_to_job.end()) {
        routes_[name] = it->second;
        break;
      }
    }
  }
}

// Pseudo-workers: one per executor of every node that is not disconnected, while the master is
// not DOWN (V4, V5). Those no longer wanted are retired (freed once idle).
void MasterView::UpdatePseudoWorkers() {
  std::set<std::string> wanted;
  if (health_ != Health::kDown) {
    for (const Node& n : nodes_) {
      const bool disconnected = n.info.offline && !n.info.temporarily_offline;
      if (disconnected) continue;
      for (const ExecutorInfo& e : n.info.executors) {
        const std::string name = WorkerName(n.info.name, e.number);
        wanted.insert(name);
        auto it = workers_.find(name);
        if (it == workers_.end()) {
          auto worker = std::make_unique<PseudoWorker>(owner_, name, n.info.name, e.number);
          broker_.Attach(*worker);
          broker_.SetClientId(*worker, name);
          workers_.emplace(name, std::move(worker));
        } else {
          it->second->retired = false;
        }
      }
    }
  }
  for (auto& [name, worker] : workers_) {
    if (wanted.count(name) == 0) worker->retired = true;
  }
}

// ---- registrations (V1-V5, D6)

std::set<std::string> MasterView::BlockedFunctions() const {
  std::set<std::string> blocked;
  const int64_t now = clock_.MonotonicMs();
  for (const auto& [fn, until] : backoff_until_) {
    if (until > now) blocked.insert(fn);
  }
  // D6: a non-concurrent job takes no new build while it is queued or building in Jenkins, or
  // while we have an item of it outstanding. The job list's flags are stale once our own build
  // of it ended after the list was requested.
  std::set<std::string> busy_jobs;
  for (const JobInfo& j : jobs_) {
    if (j.concurrent_build) continue;
    auto ended = last_end_ms_.find(j.full_name);
    const bool list_fresh = ended == last_end_ms_.end() || ended->second < jobs_requested_ms_;
    if (list_fresh && (j.in_queue || j.last_build_building)) busy_jobs.insert(j.full_name);
  }
  for (const JobInfo& j : jobs_) {
    if (!j.concurrent_build && builds_.HasBuildOf(j.full_name)) busy_jobs.insert(j.full_name);
  }
  if (!busy_jobs.empty()) {
    for (const auto& [fn, route] : routes_) {
      if (busy_jobs.count(route) != 0) blocked.insert(fn);
    }
  }
  return blocked;
}

void MasterView::ReconcileRegistrations() {
  if (closing_) return;
  const std::set<std::string> blocked = BlockedFunctions();
  std::map<std::string, const Node*> by_name;
  for (const Node& n : nodes_) by_name[n.info.name] = &n;
  for (auto it = workers_.begin(); it != workers_.end();) {
    PseudoWorker& w = *it->second;
    std::set<std::string> desired;
    if (!w.retired && health_ != Health::kDown) {
      auto node = by_name.find(w.node());
      if (node != by_name.end() && !node->second->info.offline) {
        for (const std::string& fn : node->second->functions) {
          if (blocked.count(fn) == 0) desired.insert(fn);
        }
      }
    }
    // Never withdraw the function of a job the worker holds: the broker would re-queue it.
    for (const broker::Job* job : w.state().running) desired.emplace(job->function_name());
    for (const std::string& fn : w.registered) {
      if (desired.count(fn) == 0) broker_.CantDo(w, fn);
    }
    for (const std::string& fn : desired) {
      if (w.registered.count(fn) == 0) broker_.CanDo(w, fn);
    }
    w.registered = std::move(desired);
    if (w.retired && w.idle()) {
      broker_.Detach(w);
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

void MasterView::ExpireBackOffs(int64_t now) {
  bool expired = false;
  for (auto it = backoff_until_.begin(); it != backoff_until_.end();) {
    if (it->second <= now) {
      it = backoff_until_.erase(it);
      expired = true;
    } else {
      ++it;
    }
  }
  for (Node& node : nodes_) {
    if (node.cooldown_until != 0 && node.cooldown_until <= now) {
      node.cooldown_until = 0;
      expired = true;
    }
  }
  if (expired) {
    ReconcileRegistrations();
    host_.RequestRound();
  }
}

// An idle pseudo-worker of the node, else the least busy one: a worker still holds a job until
// its end is observed, which may be after Jenkins has freed the executor. A busy worker keeps the
// functions of the jobs it holds registered even while they are blocked (D6, back-off), so one
// holding a blocked function's job must not grab.
PseudoWorker* MasterView::NextWorker(const std::string& node,
                                     const std::set<std::string>& blocked) {
  PseudoWorker* worker = nullptr;
  for (auto& [name, w] : workers_) {
    if (w->node() != node || w->retired || w->registered.empty()) continue;
    bool holds_blocked = false;
    for (const broker::Job* held : w->state().running) {
      holds_blocked |= blocked.count(std::string(held->function_name())) != 0;
    }
    if (holds_blocked) continue;
    if (worker == nullptr || w->state().running.size() < worker->state().running.size()) {
      worker = w.get();
    }
    if (w->idle()) break;
  }
  return worker;
}

// ---- the job table

const JobInfo* MasterView::FindJob(const std::string& full_name) const {
  auto it = job_index_.find(full_name);
  return it == job_index_.end() ? nullptr : &jobs_[it->second];
}

const std::string* MasterView::RouteOf(const std::string& function) const {
  auto it = routes_.find(function);
  return it == routes_.end() ? nullptr : &it->second;
}

bool MasterView::NonConcurrent(const std::string& full_name) const {
  const JobInfo* job = FindJob(full_name);
  return job != nullptr && !job->concurrent_build;
}

bool MasterView::IsPipeline(const std::string& full_name) const {
  const JobInfo* job = FindJob(full_name);
  return job != nullptr && job->cls.ends_with("WorkflowJob");
}

std::string MasterView::ShortName(const std::string& full_name) const {
  if (const JobInfo* job = FindJob(full_name)) return job->name;
  const size_t slash = full_name.rfind('/');
  return slash == std::string::npos ? full_name : full_name.substr(slash + 1);
}

}  // namespace roundhouse::jenkins
