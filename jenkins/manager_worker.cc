// The manager worker (a part of Adapter, see adapter.cc): `<MANAGER>_manager` and its two
// functions, stop:<MANAGER> (§1.7) and set_description:<MANAGER> (§1.8).

#include <algorithm>
#include <cinttypes>
#include <utility>

#include "jenkins/adapter_internal.h"
#include "protocol/http.h"
#include "server/base/log.h"

namespace roundhouse::jenkins {

using protocol::PacketType;

namespace {

constexpr int64_t kMetaRetryMs = 1000;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return protocol::http::EqualsIgnoreCase(a, b);
}

}  // namespace

void Adapter::FailQueued(const std::string& handle, const std::string& text) {
  if (manager_ == nullptr || broker_.GrabHandle(*manager_, handle) == nullptr) return;
  RH_LOG(kWarning, "jenkins master=%s handle=%s: %s", settings_.name.c_str(), handle.c_str(),
         text.c_str());
  EndMeta(handle, PacketType::kWorkException, text);
}

void Adapter::RunManager() {
  if (manager_ == nullptr) return;
  const int64_t now = clock_.MonotonicMs();
  while (const broker::Job* job = broker_.Grab(*manager_, broker::GrabKind::kAll)) {
    MetaRequest request;
    request.handle = std::string(job->handle());
    request.stop = job->function_name().starts_with("stop:");
    request.data = std::string(job->data());
    request.deadline_ms = now + settings_.meta_timeout_ms;
    RunMeta(std::move(request));
  }
  broker_.PreSleep(*manager_);
}

void Adapter::RetryMeta(int64_t now) {
  std::vector<MetaRequest> due;
  for (auto it = waiting_meta_.begin(); it != waiting_meta_.end();) {
    if (it->retry_at_ms <= now) {
      due.push_back(std::move(*it));
      it = waiting_meta_.erase(it);
    } else {
      ++it;
    }
  }
  for (MetaRequest& r : due) RunMeta(std::move(r));
}

void Adapter::EndMeta(const std::string& handle, PacketType type, std::string_view text) {
  if (manager_ == nullptr) return;
  broker_.Work(*manager_, type, handle, WorkPayload(handle, type, text));
}

void Adapter::RunMeta(MetaRequest request) {
  const char* what = request.stop ? "stop" : "set_description";
  std::string name, html;
  int64_t number = 0;
  if (request.stop) {
    auto args = ParseStopArguments(request.data);
    if (!args.ok()) {
      EndMeta(request.handle, PacketType::kWorkException,
              "Cannot find build: " + args.status().message());
      return;
    }
    name = args.value().name;
    number = args.value().number;
  } else {
    auto args = ParseDescriptionArguments(request.data);
    if (!args.ok()) {
      EndMeta(request.handle, PacketType::kWorkException,
              "Cannot set description: " + args.status().message());
      return;
    }
    name = args.value().name;
    number = args.value().number;
    html = args.value().html_description;
  }
  if (health_ != Health::kHealthy || !have_jobs_) {
    // §1.7: wait for the master up to meta_timeout_s.
    const int64_t now = clock_.MonotonicMs();
    if (now >= request.deadline_ms) {
      EndMeta(request.handle, PacketType::kWorkException,
              "Jenkins master " + settings_.name + " is not reachable");
      return;
    }
    request.retry_at_ms = now + kMetaRetryMs;
    waiting_meta_.push_back(std::move(request));
    return;
  }
  std::string full_name;
  const std::string path = ResolveBuildPath(name, number, &full_name);
  if (path.empty()) {
    EndMeta(request.handle, PacketType::kWorkException,
            "Cannot find build " + name + " #" + std::to_string(number));
    return;
  }
  RH_LOG(kInfo, "jenkins master=%s handle=%s: %s %s #%" PRId64, settings_.name.c_str(),
         request.handle.c_str(), what, name.c_str(), number);
  const std::string handle = request.handle;
  if (!request.stop) {
    Post(path + "submitDescription", {{"description", html}},
         [this, handle, number, html](RestResult&& r) {
           if (!r.ok()) {
             EndMeta(handle, PacketType::kWorkException,
                     "Cannot set description: " + r.http.error_text);
           } else if (r.status() == 302 || r.status() == 200 || r.status() == 303) {
             EndMeta(handle, PacketType::kWorkComplete,
                     "Description for Jenkins build " + std::to_string(number) +
                         " was updated to " + html);
           } else if (r.status() == 403) {
             RH_LOG(kError,
                    "jenkins master=%s: set_description answered 403: the API user needs "
                    "Run/Update",
                    settings_.name.c_str());
             EndMeta(handle, PacketType::kWorkException,
                     "Permission denied setting the description (Run/Update)");
           } else {
             EndMeta(handle, PacketType::kWorkException,
                     "Cannot find build (HTTP " + std::to_string(r.status()) + ")");
           }
         });
    return;
  }
  // stop: read the build first (§1.7: a finished build fails, an unknown one is an exception).
  Get(path + ApiJson(kTreeBuild), [this, handle, path, name, number, full_name](RestResult&& r) {
    if (!r.ok() || r.status() != 200) {
      EndMeta(handle, PacketType::kWorkException,
              r.ok() && r.status() == 404
                  ? "Cannot find build " + name + " #" + std::to_string(number)
                  : "Cannot read build " + name + " #" + std::to_string(number) + ": " +
                        (r.ok() ? "HTTP " + std::to_string(r.status()) : r.http.error_text));
      return;
    }
    auto info = ParseBuild(r.body());
    if (!info.ok()) {
      EndMeta(handle, PacketType::kWorkException, "Cannot read build: " + info.status().message());
      return;
    }
    if (!info.value().building) {
      EndMeta(handle, PacketType::kWorkFail, {});
      return;
    }
    Post(path + "stop", {}, [this, handle, path, full_name](RestResult&& r) {
      if (r.ok() && (r.status() == 302 || r.status() == 200 || r.status() == 303)) {
        auto job = job_index_.find(full_name);
        const bool pipeline =
            job != job_index_.end() && jobs_[job->second].cls.ends_with("WorkflowJob");
        if (pipeline && settings_.stop_escalation_ms > 0) {
          escalations_.push_back({path, 0, clock_.MonotonicMs() + settings_.stop_escalation_ms});
        }
        EndMeta(handle, PacketType::kWorkComplete, {});
      } else {
        EndMeta(handle, PacketType::kWorkException,
                r.ok() ? "Jenkins answered " + std::to_string(r.status()) + " to stop"
                       : "Cannot stop build: " + r.http.error_text);
      }
    });
  });
}

std::string Adapter::ResolveBuildPath(const std::string& name, int64_t number,
                                      std::string* full_name) const {
  if (name.empty() || number <= 0) return {};
  const std::string n = std::to_string(number) + "/";
  std::string ignored;
  std::string& full = full_name != nullptr ? *full_name : ignored;
  // 1) our own builds on this master.
  for (const auto& [handle, b] : builds_) {
    if (b->number == number && (b->full_name == name || ShortName(*b) == name)) {
      full = b->full_name;
      return !b->build_path.empty() ? b->build_path : b->job_path + n;
    }
  }
  // 2) a job whose fullName is `name`.
  if (job_index_.count(name) != 0) {
    full = name;
    return JobPath(name) + n;
  }
  // 3) short name, case-insensitive; the first fullName in order (job_index_ is sorted).
  std::string first;
  int matches = 0;
  for (const auto& [full, index] : job_index_) {
    if (EqualsIgnoreCase(jobs_[index].name, name)) {
      if (matches++ == 0) first = full;
    }
  }
  if (matches > 1) {
    RH_LOG(kWarning, "jenkins master=%s: '%s' names %d jobs; using %s", settings_.name.c_str(),
           name.c_str(), matches, first.c_str());
  }
  full = first;
  return first.empty() ? std::string() : JobPath(first) + n;
}

void Adapter::RunEscalations(int64_t now) {
  std::vector<Escalation> due;
  for (auto it = escalations_.begin(); it != escalations_.end();) {
    if (it->due_ms <= now) {
      due.push_back(std::move(*it));
      it = escalations_.erase(it);
    } else {
      ++it;
    }
  }
  for (Escalation& e : due) {
    Get(e.build_path + ApiJson(kTreeBuild), [this, e](RestResult&& r) {
      if (!r.ok() || r.status() != 200) return;  // gone, or the master is away: give up
      auto info = ParseBuild(r.body());
      if (!info.ok() || !info.value().building) return;  // the stop worked
      const char* action = e.stage == 0 ? "term" : "kill";
      RH_LOG(kNotice, "jenkins master=%s: %s still building %lld s after stop: %s",
             settings_.name.c_str(), e.build_path.c_str(),
             static_cast<long long>(settings_.stop_escalation_ms / 1000), action);
      Post(e.build_path + action, {}, [](RestResult&&) {});
      if (e.stage == 0) {
        Escalation next = e;
        next.stage = 1;
        next.due_ms = clock_.MonotonicMs() + settings_.stop_escalation_ms;
        escalations_.push_back(std::move(next));
      }
    });
  }
}

}  // namespace roundhouse::jenkins
