// PseudoWorker: a Gearman worker identity without a socket (doc/jenkins.md §1.3, doc/design.md
// "every worker is a worker"). One per executor of a master's node (`<node>_exec-<i>`) and one
// manager per master (`<MANAGER>_manager`). The broker sees it exactly like a network worker:
// registrations, sleeping flag, client id, running jobs; `workers` lists it with fd -1 and the
// master's host as its address.
//
// The broker calls the Peer methods from inside its own calls, where nothing may call back into
// it, so the worker only notifies its owner, which defers the actual work (see Adapter).
//
// Thread-safety: loop thread only.
#pragma once

#include <set>
#include <string>
#include <string_view>

#include "protocol/packet.h"
#include "server/broker/job.h"
#include "server/broker/peer.h"

namespace roundhouse::jenkins {

class PseudoWorkerOwner {
 public:
  virtual ~PseudoWorkerOwner() = default;
  // The broker woke a sleeping pseudo-worker: a job may be available.
  virtual void Woken() = 0;
  // A job this worker holds was cancelled by admin (`cancelled`) or abandoned by its last client.
  virtual void Withdrawn(std::string_view handle, bool cancelled) = 0;
  // For `workers`: the master's host.
  virtual std::string_view host() const = 0;
};

class PseudoWorker final : public broker::Peer {
 public:
  // `executor` is -1 for the manager worker.
  PseudoWorker(PseudoWorkerOwner& owner, std::string name, std::string node, int executor)
      : owner_(owner), name_(std::move(name)), node_(std::move(node)), executor_(executor) {}

  void SendNoop() override { owner_.Woken(); }
  void SendWork(protocol::PacketType, std::string_view) override {}  // never a client
  void SubmitDone(uint64_t, const broker::SubmitReply&) override {}
  void JobWithdrawn(const broker::Job& job) override {
    owner_.Withdrawn(job.handle(), job.cancelled());
  }
  int Fd() const override { return -1; }
  std::string_view Address() const override { return owner_.host(); }

  const std::string& name() const { return name_; }
  const std::string& node() const { return node_; }
  int executor() const { return executor_; }
  bool idle() const { return state().running.empty(); }

  // Function names currently registered with the broker (kept by the owner).
  std::set<std::string> registered;
  // Not in the latest view any more (executor or node removed) while still holding a job: no
  // registrations beyond its jobs', destroyed once idle.
  bool retired = false;

 private:
  PseudoWorkerOwner& owner_;
  std::string name_;
  std::string node_;
  int executor_;
};

// The body of a WORK_* packet from a pseudo-worker: "HANDLE\0" + `body` (WORK_STATUS: body is
// "NUM\0DEN"); WORK_FAIL is the handle alone.
std::string WorkPayload(std::string_view handle, protocol::PacketType type, std::string_view body);

}  // namespace roundhouse::jenkins
