// ManagerWorker: see manager_worker.h.

#include "jenkins/manager_worker.h"

#include <cinttypes>
#include <utility>

#include "base/log.h"
#include "jenkins/job_contract.h"
#include "jenkins/rest_model.h"

namespace roundhouse::jenkins {

using protocol::PacketType;

namespace {

constexpr int64_t kMetaRetryMs = 1000;

}  // namespace

void ManagerWorker::Attach() {
  worker_ = std::make_unique<PseudoWorker>(owner_, settings_.manager_name + "_manager", "", -1);
  broker_.Attach(*worker_);
  broker_.SetClientId(*worker_, worker_->name());
  for (const std::string& fn :
       {"stop:" + settings_.manager_name, "set_description:" + settings_.manager_name}) {
    broker_.CanDo(*worker_, fn);
    worker_->registered.insert(fn);
  }
  broker_.PreSleep(*worker_);
}

void ManagerWorker::Detach() {
  if (worker_ == nullptr) return;
  broker_.Detach(*worker_);
  worker_.reset();
}

void ManagerWorker::Tick(int64_t now) {
  RetryMeta(now);
  RunEscalations(now);
}

void ManagerWorker::FailQueued(const std::string& handle, const std::string& text) {
  if (worker_ == nullptr || broker_.GrabHandle(*worker_, handle) == nullptr) return;
  RH_LOG(kWarning, "jenkins master=%s handle=%s: %s", settings_.name.c_str(), handle.c_str(),
         text.c_str());
  EndMeta(handle, PacketType::kWorkException, text);
}

void ManagerWorker::Run() {
  if (worker_ == nullptr) return;
  const int64_t now = clock_.MonotonicMs();
  while (const broker::Job* job = broker_.Grab(*worker_, broker::GrabKind::kAll)) {
    Request request;
    request.handle = std::string(job->handle());
    request.stop = job->function_name().starts_with("stop:");
    request.data = std::string(job->data());
    request.deadline_ms = now + settings_.meta_timeout_ms;
    RunMeta(std::move(request));
  }
  broker_.PreSleep(*worker_);
}

void ManagerWorker::RetryMeta(int64_t now) {
  std::vector<Request> due;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->retry_at_ms <= now) {
      due.push_back(std::move(*it));
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  for (Request& r : due) RunMeta(std::move(r));
}

void ManagerWorker::EndMeta(const std::string& handle, PacketType type, std::string_view text) {
  if (worker_ == nullptr) return;
  broker_.Work(*worker_, type, handle, WorkPayload(handle, type, text));
}

void ManagerWorker::RunMeta(Request request) {
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
  if (!host_.MasterReady()) {
    // §1.7: wait for the master up to meta_timeout_s.
    const int64_t now = clock_.MonotonicMs();
    if (now >= request.deadline_ms) {
      EndMeta(request.handle, PacketType::kWorkException,
              "Jenkins master " + settings_.name + " is not reachable");
      return;
    }
    request.retry_at_ms = now + kMetaRetryMs;
    waiting_.push_back(std::move(request));
    return;
  }
  std::string full_name;
  const std::string path = host_.ResolveBuildPath(name, number, &full_name);
  if (path.empty()) {
    EndMeta(request.handle, PacketType::kWorkException,
            "Cannot find build " + name + " #" + std::to_string(number));
    return;
  }
  RH_LOG(kInfo, "jenkins master=%s handle=%s: %s %s #%" PRId64, settings_.name.c_str(),
         request.handle.c_str(), what, name.c_str(), number);
  if (request.stop) {
    Stop(request.handle, path, name, number, full_name);
  } else {
    SetDescription(request.handle, path, number, html);
  }
}

// W5, and the answer §1.7 gives the client for each outcome.
void ManagerWorker::SetDescription(const std::string& handle, const std::string& path,
                                   int64_t number, const std::string& html) {
  host_.Post(path + "submitDescription", {{"description", html}},
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
}

// stop: read the build first (§1.7: a finished build fails, an unknown one is an exception), then
// W4; a Pipeline's stop escalates (stop_escalation_s).
void ManagerWorker::Stop(const std::string& handle, const std::string& path,
                         const std::string& name, int64_t number, const std::string& full_name) {
  host_.Get(path + ApiJson(kTreeBuild), [this, handle, path, name, number,
                                         full_name](RestResult&& r) {
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
    host_.Post(path + "stop", {}, [this, handle, path, full_name](RestResult&& r) {
      if (r.ok() && (r.status() == 302 || r.status() == 200 || r.status() == 303)) {
        if (host_.IsPipeline(full_name) && settings_.stop_escalation_ms > 0) {
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

void ManagerWorker::RunEscalations(int64_t now) {
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
    host_.Get(e.build_path + ApiJson(kTreeBuild), [this, e](RestResult&& r) {
      if (!r.ok() || r.status() != 200) return;  // gone, or the master is away: give up
      auto info = ParseBuild(r.body());
      if (!info.ok() || !info.value().building) return;  // the stop worked
      const char* action = e.stage == 0 ? "term" : "kill";
      RH_LOG(kNotice, "jenkins master=%s: %s still building %lld s after stop: %s",
             settings_.name.c_str(), e.build_path.c_str(),
             static_cast<long long>(settings_.stop_escalation_ms / 1000), action);
      host_.Post(e.build_path + action, {}, [](RestResult&&) {});
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
