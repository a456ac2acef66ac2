// Test doubles for the Adapter's unit tests: a scripted Transport (every request waits until the
// test answers it), an AdapterHost that counts round requests, and a harness that wires one
// Adapter to a Broker on a FakeClock (test/unit/broker/broker_fakes.h) with one Gearman client.
// Nothing here opens a socket or sleeps; the uv loop only carries the adapter's timers, which
// never fire (the test runs their work through AdapterProbe after moving the clock).
#pragma once

#include <uv.h>

#include <catch2/catch.hpp>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jenkins/adapter.h"
#include "jenkins/transport.h"
#include "storage/job_store.h"
#include "test/unit/broker/broker_fakes.h"

namespace roundhouse::jenkins {

// Reaches the Adapter's timer work (a friend of Adapter).
struct AdapterProbe {
  static void Tick(Adapter& a) { a.Tick(); }
  static void PollComputers(Adapter& a) { a.view_.PollComputers(); }
  static void PollJobs(Adapter& a) { a.view_.PollJobs(); }
  static void PollController(Adapter& a) { a.view_.PollController(); }
};

namespace testing {

constexpr char kBase[] = "http://jenkins.test/";

// A Transport whose requests wait in `pending` until the test answers them, oldest first.
class FakeTransport final : public Transport {
 public:
  struct Request {
    bool post = false;
    std::string path;
    Form form;
    Callback callback;
  };

  void Get(std::string path, Callback callback, ReplySize) override {
    pending.push_back(Request{false, std::move(path), {}, std::move(callback)});
    log.push_back("GET " + pending.back().path);
  }
  void Post(std::string path, Form form, Callback callback) override {
    pending.push_back(Request{true, std::move(path), std::move(form), std::move(callback)});
    log.push_back("POST " + pending.back().path);
  }
  void Close(std::function<void()> closed) override {
    pending.clear();
    closed();
  }
  void SetApiToken(std::string) override {}
  const std::string& jenkins_version() const override { return version; }
  const std::string& instance_id() const override { return instance; }
  std::string RelativePath(std::string_view url) const override {
    const std::string_view base = kBase;
    if (url.starts_with(base)) return std::string(url.substr(base.size()));
    if (url.starts_with("/")) return std::string(url.substr(1));
    return {};
  }

  // The oldest pending request whose "GET path" / "POST path" starts with `prefix`, if any.
  bool Has(std::string_view prefix) const { return Find(prefix) != pending.end(); }
  size_t Count(std::string_view prefix) const {
    size_t n = 0;
    for (const Request& r : pending) n += Line(r).starts_with(prefix) ? 1 : 0;
    return n;
  }

  // Answers the oldest request matching `prefix`; false when there is none.
  bool Reply(std::string_view prefix, int status, std::string body = {},
             std::vector<protocol::http::Header> headers = {}) {
    auto it = Find(prefix);
    if (it == pending.end()) return false;
    Request r = std::move(*it);
    pending.erase(it);
    RestResult result;
    result.http.request_sent = true;
    result.http.response.status = status;
    result.http.response.body = std::move(body);
    result.http.response.headers = std::move(headers);
    last_form = r.form;
    r.callback(std::move(result));
    return true;
  }
  // Fails the oldest request matching `prefix` at the transport level.
  bool Fail(std::string_view prefix, HttpError error, bool request_sent) {
    auto it = Find(prefix);
    if (it == pending.end()) return false;
    Request r = std::move(*it);
    pending.erase(it);
    RestResult result;
    result.http.error = error;
    result.http.error_text = HttpErrorName(error);
    result.http.request_sent = request_sent;
    r.callback(std::move(result));
    return true;
  }

  std::deque<Request> pending;
  std::vector<std::string> log;  // every request, in order
  Form last_form;                // the form of the last request answered
  std::string version = "2.400";
  std::string instance = "session-1";

 private:
  static std::string Line(const Request& r) { return (r.post ? "POST " : "GET ") + r.path; }
  std::deque<Request>::iterator Find(std::string_view prefix) {
    for (auto it = pending.begin(); it != pending.end(); ++it) {
      if (Line(*it).starts_with(prefix)) return it;
    }
    return pending.end();
  }
  std::deque<Request>::const_iterator Find(std::string_view prefix) const {
    for (auto it = pending.begin(); it != pending.end(); ++it) {
      if (Line(*it).starts_with(prefix)) return it;
    }
    return pending.end();
  }
};

// A durable store that keeps only the journal, in memory; a put's `done` waits for Commit() (the
// store's writer thread, run by the test). It outlives the adapters that use it, so it survives
// a "restart" of the adapter (AdapterHarness::Restart).
class FakeJournalStore final : public storage::JobStore {
 public:
  Result<storage::ReplayInfo> Replay(const std::function<void(storage::JobRecord&&)>&) override {
    return storage::ReplayInfo{};
  }
  void Add(storage::JobRecord, std::function<void(Status)> done) override {
    pending.push_back(std::move(done));
  }
  void Remove(uint64_t) override {}
  void SetHandleCeiling(uint64_t) override {}
  bool durable() const override { return true; }
  void PutJournal(const std::string& master, const std::string& handle, const std::string& entry,
                  std::function<void(Status)> done) override {
    rows[{master, handle}] = entry;
    if (done) pending.push_back(std::move(done));
  }
  void DeleteJournal(const std::string& master, const std::string& handle) override {
    rows.erase({master, handle});
  }
  Result<std::vector<storage::JournalRow>> LoadJournal() override {
    std::vector<storage::JournalRow> out;
    for (const auto& [key, entry] : rows) out.push_back({key.first, key.second, entry});
    return out;
  }
  void Close() override { Commit(); }

  // Runs every `done` owed, as the writer thread's commit would.
  void Commit() {
    auto owed = std::move(pending);
    pending.clear();
    for (auto& done : owed) done(Status::Ok());
  }

  std::map<std::pair<std::string, std::string>, std::string> rows;  // (master, handle) -> entry
  std::vector<std::function<void(Status)>> pending;
};

class FakeHost final : public AdapterHost {
 public:
  void RequestRound() override { ++rounds; }
  int rounds = 0;
};

// ---- replies of a master, as the simulator would send them

struct FakeJob {
  FakeJob(std::string n, bool p = true, bool c = true, std::string l = {})
      : name(std::move(n)), parameters(p), concurrent(c), label(std::move(l)) {}
  std::string name;
  bool parameters = true;  // defines GEARMAN_NODE and GEARMAN_UNIQUE (and X)
  bool concurrent = true;
  std::string label;  // labelExpression; empty: null
};

inline std::string JobsJson(const std::vector<FakeJob>& jobs) {
  std::string out = "{\"jobs\":[";
  for (size_t i = 0; i < jobs.size(); ++i) {
    const FakeJob& j = jobs[i];
    if (i > 0) out += ",";
    out += "{\"_class\":\"hudson.model.FreeStyleProject\",\"name\":\"" + j.name +
           "\",\"fullName\":\"" + j.name + "\",\"url\":\"" + kBase + "job/" + j.name +
           "/\",\"buildable\":true,\"disabled\":false,\"concurrentBuild\":" +
           (j.concurrent ? "true" : "false") +
           ",\"labelExpression\":" + (j.label.empty() ? "null" : "\"" + j.label + "\"") +
           ",\"inQueue\":false,\"property\":[";
    if (j.parameters) {
      out +=
          "{\"parameterDefinitions\":["
          "{\"name\":\"GEARMAN_NODE\",\"type\":\"StringParameterDefinition\"},"
          "{\"name\":\"GEARMAN_UNIQUE\",\"type\":\"StringParameterDefinition\"},"
          "{\"name\":\"X\",\"type\":\"StringParameterDefinition\"}]}";
    }
    out += "]}";
  }
  return out + "]}";
}

struct FakeNode {
  FakeNode(std::string n, int e = 1, std::vector<std::string> l = {})
      : name(std::move(n)), executors(e), labels(std::move(l)) {}
  std::string name;
  int executors = 1;
  std::vector<std::string> labels;
  bool offline = false;
  bool temporarily_offline = false;
  // executor index -> build URL running there
  std::vector<std::pair<int, std::string>> busy;
};

inline std::string ComputersJson(const std::vector<FakeNode>& nodes) {
  std::string out = "{\"computer\":[";
  for (size_t i = 0; i < nodes.size(); ++i) {
    const FakeNode& n = nodes[i];
    if (i > 0) out += ",";
    out += "{\"_class\":\"hudson.slaves.SlaveComputer\",\"displayName\":\"" + n.name +
           "\",\"offline\":" + (n.offline ? "true" : "false") +
           ",\"temporarilyOffline\":" + (n.temporarily_offline ? "true" : "false") +
           ",\"numExecutors\":" + std::to_string(n.executors) + ",\"assignedLabels\":[";
    for (size_t l = 0; l < n.labels.size(); ++l) {
      out += (l > 0 ? ",{\"name\":\"" : "{\"name\":\"") + n.labels[l] + "\"}";
    }
    out += "],\"executors\":[";
    for (int e = 0; e < n.executors; ++e) {
      std::string url;
      for (const auto& [index, u] : n.busy) {
        if (index == e) url = u;
      }
      if (e > 0) out += ",";
      out += "{\"number\":" + std::to_string(e) + ",\"idle\":" + (url.empty() ? "true" : "false");
      if (!url.empty()) out += ",\"currentExecutable\":{\"number\":1,\"url\":\"" + url + "\"}";
      out += "}";
    }
    out += "],\"oneOffExecutors\":[]}";
  }
  return out + "]}";
}

inline std::string BuildUrl(std::string_view job, int64_t number) {
  return std::string(kBase) + "job/" + std::string(job) + "/" + std::to_string(number) + "/";
}

// R9 of a build; `result` empty: still building.
inline std::string BuildJson(std::string_view job, int64_t number, std::string_view node,
                             std::string_view result = {}) {
  return "{\"number\":" + std::to_string(number) + ",\"url\":\"" + BuildUrl(job, number) +
         "\",\"building\":" + (result.empty() ? "true" : "false") + ",\"result\":" +
         (result.empty() ? std::string("null") : "\"" + std::string(result) + "\"") +
         ",\"timestamp\":0,\"duration\":0,\"estimatedDuration\":-1,\"builtOn\":\"" +
         std::string(node) + "\"}";
}

inline std::vector<protocol::http::Header> Location(int64_t queue_id) {
  return {{"Location", std::string(kBase) + "queue/item/" + std::to_string(queue_id) + "/"}};
}

// One Adapter over a FakeTransport, with a Broker and one Gearman client on the same FakeClock.
class AdapterHarness {
 public:
  // `store` (optional, outlives the harness) keeps the journal.
  explicit AdapterHarness(std::function<void(MasterSettings&)> tune = {},
                          FakeJournalStore* store = nullptr)
      : store_(store) {
    uv_loop_init(&loop);
    MasterSettings s;
    s.name = "m1";
    s.manager_name = "m1";
    s.base_url.host = "jenkins.test";
    s.base_url.path = "/";
    s.base_url.text = kBase;
    s.api_token = "t";
    s.user = "u";
    s.resume_window_ms = 0;
    if (tune) tune(s);
    settings = s;
    MakeAdapter();
    client = &h.NewPeer(7);
    h.broker->SetExceptions(*client, true);  // WORK_EXCEPTION reaches the client as such
  }
  ~AdapterHarness() {
    CloseAdapter();
    uv_loop_close(&loop);
  }

  // Start() and the first snapshots: controller, jobs, computers, then every node's mode.
  void Bring(const std::vector<FakeJob>& jobs, const std::vector<FakeNode>& nodes,
             std::string_view mode = "NORMAL") {
    adapter->Start();
    Snapshots(jobs, nodes, mode);
  }
  // Our server restarts (§4.11): the adapter closes (its pseudo-workers' jobs go back to the
  // queue, as the broker restores them at a restart), a new one over a new transport starts,
  // reads the journal back from the store, and gets its first snapshots.
  void Restart(const std::vector<FakeJob>& jobs, const std::vector<FakeNode>& nodes) {
    CloseAdapter();
    MakeAdapter();
    adapter->Start();
    auto rows = store_->LoadJournal();
    REQUIRE(rows.ok());
    adapter->Recover(rows.value());
    Snapshots(jobs, nodes, "NORMAL");
  }
  // The answers to the first polls: controller, jobs, computers, then every node's mode.
  void Snapshots(const std::vector<FakeJob>& jobs, const std::vector<FakeNode>& nodes,
                 std::string_view mode) {
    REQUIRE(transport->Reply("GET api/json", 200, "{\"quietingDown\":false}"));
    REQUIRE(transport->Reply("GET api/json", 200, JobsJson(jobs)));
    REQUIRE(transport->Reply("GET computer/api/json", 200, ComputersJson(nodes)));
    for (const FakeNode& n : nodes) {
      REQUIRE(transport->Reply("GET label/" + n.name + "/", 200,
                               "{\"nodes\":[{\"nodeName\":\"" + n.name + "\",\"mode\":\"" +
                                   std::string(mode) + "\"}]}"));
    }
  }
  // A fresh computers snapshot (the poll is started and answered).
  void Computers(const std::vector<FakeNode>& nodes) {
    AdapterProbe::PollComputers(*adapter);
    REQUIRE(transport->Reply("GET computer/api/json", 200, ComputersJson(nodes)));
  }
  std::string Submit(std::string_view function, std::string_view unique = "u1",
                     std::string_view data = "{}") {
    auto outcome = h.Submit(*client, function, unique, data);
    REQUIRE(outcome.reply.ok);
    return std::string(outcome.reply.handle);
  }
  // Moves the clock and runs the adapter's periodic work.
  void Advance(int64_t ms) {
    h.clock.AdvanceMs(ms);
    AdapterProbe::Tick(*adapter);
  }
  // The state of our only build, or "" when there is none.
  std::string State() const {
    MasterSummary s = adapter->Summary();
    return s.builds.empty() ? "" : s.builds.front().state;
  }
  // Packet types the client received, in order.
  std::vector<protocol::PacketType> Packets() const {
    std::vector<protocol::PacketType> out;
    for (const auto& w : client->work) out.push_back(w.type);
    return out;
  }
  // Claim through trigger to queued: the round claims, the POST answers 201 for `queue_id`.
  void TriggerQueued(int64_t queue_id) {
    adapter->Round();
    if (store_ != nullptr) store_->Commit();  // J1: the POST waits for the TRIGGERING entry
    REQUIRE(transport->Reply("POST job/", 201, "", Location(queue_id)));
    REQUIRE(State() == "QUEUED");
  }

  // Bring, one job of build:job1 submitted (unique "u1") and triggered as queue item 7.
  std::string Queued(const std::vector<FakeJob>& jobs, const std::vector<FakeNode>& nodes) {
    Bring(jobs, nodes);
    const std::string handle = Submit("build:job1");
    TriggerQueued(7);
    return handle;
  }

  broker::testing::Harness h;
  uv_loop_t loop{};
  FakeHost host;
  MasterSettings settings;
  FakeTransport* transport = nullptr;  // owned by the adapter
  std::unique_ptr<Adapter> adapter;
  broker::testing::FakePeer* client = nullptr;

 private:
  void MakeAdapter() {
    auto t = std::make_unique<FakeTransport>();
    transport = t.get();
    adapter =
        std::make_unique<Adapter>(&loop, *h.broker, h.clock, host, settings, store_, std::move(t));
  }
  void CloseAdapter() {
    adapter->Close([] {});
    uv_run(&loop, UV_RUN_DEFAULT);
    adapter.reset();
  }

  FakeJournalStore* store_ = nullptr;
};

}  // namespace testing
}  // namespace roundhouse::jenkins
