// ManagerWorker: the pseudo-worker `<MANAGER>_manager` of one master and its two functions,
// stop:<MANAGER> (doc/jenkins.md §1.7, with the term/kill escalation for Pipelines) and
// set_description:<MANAGER> (§1.8). A request that arrives while the master is not ready waits
// for it up to meta_timeout_s.
//
// Ownership: owned by its Adapter, which is its Host (the REST calls, with health accounting,
// and the questions only the adapter's view can answer). The broker sees the PseudoWorker from
// Attach() to Detach(); the adapter also lends it as the holder of builds re-bound from the
// journal (§4.11). Callbacks of its requests never run after the adapter began closing (the
// adapter's REST calls drop them), so they may capture `this`.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "jenkins/master_settings.h"
#include "jenkins/pseudo_worker.h"
#include "jenkins/transport.h"
#include "server/broker/broker.h"

namespace roundhouse::jenkins {

class ManagerWorker {
 public:
  // What the manager worker asks of its adapter.
  class Host {
   public:
    virtual ~Host() = default;
    // HEALTHY, with a job list: a request may be resolved and sent.
    virtual bool MasterReady() const = 0;
    // §1.7 resolution of `name` and `number` to a build path; empty if unknown. `full_name`
    // (optional) receives the job's fullName.
    virtual std::string ResolveBuildPath(const std::string& name, int64_t number,
                                         std::string* full_name) const = 0;
    virtual bool IsPipeline(const std::string& full_name) const = 0;
    // REST calls through the adapter (health accounting, dropped once it is closing).
    virtual void Get(std::string path, std::function<void(RestResult&&)> done,
                     ReplySize size = ReplySize::kItem) = 0;
    virtual void Post(std::string path, std::vector<std::pair<std::string, std::string>> form,
                      std::function<void(RestResult&&)> done) = 0;
  };

  // `settings` and the other references outlive the worker (its adapter owns them).
  ManagerWorker(Host& host, PseudoWorkerOwner& owner, broker::Broker& broker, Clock& clock,
                const MasterSettings& settings)
      : host_(host), owner_(owner), broker_(broker), clock_(clock), settings_(settings) {}
  ManagerWorker(const ManagerWorker&) = delete;
  ManagerWorker& operator=(const ManagerWorker&) = delete;

  // Registers `<MANAGER>_manager` with stop: and set_description: at the broker.
  void Attach();
  // Withdraws it (closing): jobs it holds go back to the broker.
  void Detach();
  // The pseudo-worker while attached, else null.
  PseudoWorker* worker() { return worker_.get(); }

  // Grabs and runs every request waiting for it (the adapter's dispatch round).
  void Run();
  // Periodic work: requests waiting for the master, due escalations.
  void Tick(int64_t now);
  // Ends a queued job with WORK_EXCEPTION `text` (the Hub's unroutable sweep, §4.3 F5).
  void FailQueued(const std::string& handle, const std::string& text);

 private:
  struct Request {
    std::string handle;
    bool stop = false;  // stop:, else set_description:
    std::string data;
    int64_t deadline_ms = 0;  // give up waiting for a ready master (meta_timeout_s)
    int64_t retry_at_ms = 0;
  };
  // §1.7: a Pipeline still building stop_escalation_s after `stop` gets `term`, then `kill`.
  struct Escalation {
    std::string build_path;
    int stage = 0;  // 0: term is next, 1: kill is next
    int64_t due_ms = 0;
  };

  void RunMeta(Request request);
  void SetDescription(const std::string& handle, const std::string& path, int64_t number,
                      const std::string& html);
  void Stop(const std::string& handle, const std::string& path, const std::string& name,
            int64_t number, const std::string& full_name);
  void RetryMeta(int64_t now);
  void RunEscalations(int64_t now);
  void EndMeta(const std::string& handle, protocol::PacketType type, std::string_view text);

  Host& host_;
  PseudoWorkerOwner& owner_;
  broker::Broker& broker_;
  Clock& clock_;
  const MasterSettings& settings_;
  std::unique_ptr<PseudoWorker> worker_;
  std::vector<Request> waiting_;  // for a ready master
  std::vector<Escalation> escalations_;
};

}  // namespace roundhouse::jenkins
