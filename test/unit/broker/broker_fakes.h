// Test doubles for the broker unit tests: a recording Peer, an in-memory JobStore whose commits
// the test completes or fails by hand, a log capture, and a harness that wires them to a Broker
// on a FakeClock.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/log.h"
#include "protocol/packet.h"
#include "server/broker/broker.h"
#include "storage/job_store.h"

namespace roundhouse::broker::testing {

using protocol::PacketType;

// Records everything the broker sends it.
class FakePeer final : public Peer {
 public:
  struct Sent {
    PacketType type;
    std::string payload;
  };
  struct Done {
    uint64_t ticket;
    bool ok;
    std::string handle;
    std::string error_code;
    std::string error_text;
  };

  explicit FakePeer(int fd, std::string address = "127.0.0.1")
      : fd_(fd), address_(std::move(address)) {}

  void SendNoop() override { ++noops; }
  void SendWork(PacketType type, std::string_view payload) override {
    work.push_back(Sent{type, std::string(payload)});
  }
  void SubmitDone(uint64_t ticket, const SubmitReply& reply) override {
    done.push_back(Done{ticket, reply.ok, std::string(reply.handle), std::string(reply.error_code),
                        std::string(reply.error_text)});
  }
  void JobWithdrawn(const Job& job) override { withdrawn.emplace_back(job.handle()); }
  int Fd() const override { return fd_; }
  std::string_view Address() const override { return address_; }

  int noops = 0;
  std::vector<Sent> work;
  std::vector<Done> done;
  std::vector<std::string> withdrawn;

 private:
  int fd_;
  std::string address_;
};

// An asynchronous in-memory store: Add() only records; the test decides when (and whether) each
// commit succeeds. Committed rows are kept so tests can check what a restart would replay.
class FakeStore final : public storage::JobStore {
 public:
  struct PendingAdd {
    storage::JobRecord record;
    std::function<void(Status)> done;
  };

  Result<storage::ReplayInfo> Replay(
      const std::function<void(storage::JobRecord&&)>& sink) override {
    for (auto& [id, rec] : rows) {
      storage::JobRecord copy = rec;
      sink(std::move(copy));
    }
    return storage::ReplayInfo{ceiling, rows.size(), 0};
  }
  void Add(storage::JobRecord rec, std::function<void(Status)> done) override {
    adds.push_back(PendingAdd{std::move(rec), std::move(done)});
  }
  void Remove(uint64_t id) override {
    removes.push_back(id);
    rows.erase(id);
  }
  void SetHandleCeiling(uint64_t c) override {
    ceilings.push_back(c);
    ceiling = c;
  }
  // Keeps the JobStore contract that every `done` runs exactly once: writes a test left
  // uncommitted are failed on Close() and, at the latest, here (the Harness destroys the broker
  // first, so these callbacks also exercise the broker-gone path).
  ~FakeStore() override { Close(); }
  void Close() override {
    while (!adds.empty()) FailNext("store closed");
  }

  // Commits the oldest uncommitted Add (FIFO, like the real group commit).
  void CommitNext() {
    PendingAdd a = std::move(adds.front());
    adds.pop_front();
    // A Remove queued after the Add wins, as in a real commit that applies both in order.
    bool removed_later = false;
    for (uint64_t id : removes) removed_later |= (id == a.record.id);
    if (!removed_later) rows[a.record.id] = a.record;
    a.done(Status::Ok());
  }
  void FailNext(const std::string& message) {
    PendingAdd a = std::move(adds.front());
    adds.pop_front();
    a.done(Status::Error(message));
  }
  void CommitAll() {
    while (!adds.empty()) CommitNext();
  }

  std::deque<PendingAdd> adds;
  std::map<uint64_t, storage::JobRecord> rows;
  std::vector<uint64_t> removes;
  std::vector<uint64_t> ceilings;
  uint64_t ceiling = 0;
};

// Sends log lines to a temporary file for the lifetime of the object.
class LogCapture {
 public:
  LogCapture() {
    char name[] = "/tmp/broker-log-XXXXXX";
    const int fd = mkstemp(name);
    if (fd >= 0) close(fd);
    path_ = name;
    (void)log::Open(path_);
    log::SetLevel(log::Level::kDebug);
  }
  ~LogCapture() {
    (void)log::Open("stderr");
    log::SetLevel(log::Level::kError);
    std::remove(path_.c_str());
  }
  std::string Text() const {
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool Contains(std::string_view needle) const { return Text().find(needle) != std::string::npos; }

 private:
  std::string path_;
};

inline Options DefaultOptions() {
  Options o;
  o.handle_prefix = "H:test";
  return o;
}

struct SubmitArgs {
  Priority priority = Priority::kNormal;
  bool background = false;
  int64_t when = 0;
  std::string reducer;
};

// A Broker on a FakeClock with an optional FakeStore; owns the peers it creates.
class Harness {
 public:
  explicit Harness(Options options = DefaultOptions(), bool with_store = false) {
    broker = std::make_unique<Broker>(std::move(options), clock, with_store ? &store : nullptr,
                                      [this](int64_t d) { scheduled.push_back(d); });
  }

  // A new attached peer.
  FakePeer& NewPeer(int fd = -1) {
    peers.push_back(std::make_unique<FakePeer>(fd));
    broker->Attach(*peers.back());
    return *peers.back();
  }

  SubmitOutcome Submit(FakePeer& peer, std::string_view fn, std::string_view unique,
                       std::string_view data, const SubmitArgs& args = {}) {
    SubmitRequest r;
    r.function = fn;
    r.unique = unique;
    r.data = data;
    r.reducer = args.reducer;
    r.priority = args.priority;
    r.background = args.background;
    r.when = args.when;
    return broker->Submit(peer, r);
  }

  // Submits and returns the handle of an immediate successful reply ("" otherwise).
  std::string Handle(FakePeer& peer, std::string_view fn, std::string_view unique,
                     std::string_view data, const SubmitArgs& args = {}) {
    SubmitOutcome out = Submit(peer, fn, unique, data, args);
    if (out.pending || !out.reply.ok) return "";
    return std::string(out.reply.handle);
  }
  std::string Fg(FakePeer& peer, std::string_view fn, std::string_view unique = "",
                 std::string_view data = "x", Priority p = Priority::kNormal) {
    return Handle(peer, fn, unique, data, SubmitArgs{p, false, 0, ""});
  }
  std::string Bg(FakePeer& peer, std::string_view fn, std::string_view unique = "",
                 std::string_view data = "x", Priority p = Priority::kNormal) {
    return Handle(peer, fn, unique, data, SubmitArgs{p, true, 0, ""});
  }

  // Grabs and returns the handle ("" for NO_JOB).
  std::string Grab(FakePeer& peer) {
    const Job* job = broker->Grab(peer, GrabKind::kJob);
    return job == nullptr ? "" : std::string(job->handle());
  }

  WorkResult Complete(FakePeer& peer, const std::string& handle, std::string_view data = "ok") {
    std::string body = handle;
    body.push_back('\0');
    body.append(data);
    return broker->Work(peer, PacketType::kWorkComplete, handle, body);
  }
  WorkResult Fail(FakePeer& peer, const std::string& handle) {
    return broker->Work(peer, PacketType::kWorkFail, handle, handle);
  }

  const Function* Fn(std::string_view name) const {
    for (const Function* f : broker->FunctionsByName()) {
      if (f->name() == name) return f;
    }
    return nullptr;
  }
  // Fn(name), or a blank function when the broker freed it (nothing referred to it any more):
  // for count checks, which then read zero. Per-function counters of a freed function are in
  // broker->retired().
  const Function* Counts(std::string_view name) {
    if (const Function* f = Fn(name)) return f;
    if (ghosts == nullptr) ghosts = std::make_unique<Broker>(DefaultOptions(), clock, nullptr, nullptr);
    ghosts->CreateFunction(name);
    return ghosts->FindFunction(name);
  }
  std::unique_ptr<Broker> ghosts;

  FakeClock clock;
  FakeStore store;
  std::vector<int64_t> scheduled;
  // Declared before the broker, so the broker is destroyed first.
  std::deque<std::unique_ptr<FakePeer>> peers;
  std::unique_ptr<Broker> broker;
};

}  // namespace roundhouse::broker::testing
