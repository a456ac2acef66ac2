#include "server/http/api.h"

#include <rapidjson/writer.h>

#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "protocol/printable.h"

namespace roundhouse::server::http {
namespace {

// RapidJSON's output stream concept over a std::string the caller may switch between writes,
// so one Writer (and its nesting state) can write a document a slice at a time.
struct StringOut {
  using Ch = char;
  std::string* out = nullptr;
  void Put(char c) { out->push_back(c); }
  void Flush() {}
};
using JsonWriter = rapidjson::Writer<StringOut>;

// A whole document into one string (the documents that are never large).
class Document {
 public:
  Document() : writer_(stream_) { stream_.out = &text_; }
  JsonWriter& w() { return writer_; }
  std::string Done() {
    text_.push_back('\n');
    return std::move(text_);
  }

 private:
  std::string text_;
  StringOut stream_;
  JsonWriter writer_;
};

// Every string a peer may have chosen (names, uniques, client ids) goes through here: bytes that
// are not valid UTF-8 become U+FFFD, so the document stays valid JSON (doc/protocol.md, "Names in
// output"); the writer escapes quotes, backslashes and control characters.
void Str(JsonWriter& w, std::string_view s) {
  if (!protocol::IsValidUtf8(s)) {
    std::string valid;
    protocol::AppendValidUtf8(&valid, s);
    w.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
    return;
  }
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
void Key(JsonWriter& w, std::string_view s) {
  w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
void KeyStr(JsonWriter& w, std::string_view k, std::string_view v) {
  Key(w, k);
  Str(w, v);
}
void KeyU(JsonWriter& w, std::string_view k, uint64_t v) {
  Key(w, k);
  w.Uint64(v);
}
void KeyI(JsonWriter& w, std::string_view k, int64_t v) {
  Key(w, k);
  w.Int64(v);
}
void KeyB(JsonWriter& w, std::string_view k, bool v) {
  Key(w, k);
  w.Bool(v);
}
void StrArray(JsonWriter& w, std::string_view k, const std::vector<std::string>& values) {
  Key(w, k);
  w.StartArray();
  for (const std::string& v : values) Str(w, v);
  w.EndArray();
}

void WriteFunction(JsonWriter& w, const FunctionInfo& f) {
  w.StartObject();
  KeyStr(w, "name", f.name);
  Key(w, "queued");
  w.StartObject();
  KeyU(w, "high", f.queued[0]);
  KeyU(w, "normal", f.queued[1]);
  KeyU(w, "low", f.queued[2]);
  w.EndObject();
  KeyU(w, "queued_total", f.queued[0] + f.queued[1] + f.queued[2]);
  KeyU(w, "running", f.running);
  KeyU(w, "workers", f.workers);
  KeyU(w, "submitted", f.submitted);
  KeyU(w, "completed", f.completed);
  KeyU(w, "failed", f.failed);
  w.EndObject();
}

void WriteServerAndStore(JsonWriter& w, const ServerInfo& server) {
  Key(w, "server");
  w.StartObject();
  KeyStr(w, "version", server.version);
  KeyI(w, "uptime_ms", server.uptime_ms);
  KeyI(w, "started_unix", server.started_unix);
  KeyU(w, "connections", server.connections);
  w.EndObject();

  Key(w, "store");
  w.StartObject();
  KeyStr(w, "type", server.store_type);
  KeyStr(w, "path", server.store_path);
  KeyU(w, "commits", server.store.commits);
  KeyU(w, "failed_commits", server.store.failed_commits);
  KeyU(w, "pending_adds", server.store.pending_adds);
  w.EndObject();
}

void WriteStatusTail(JsonWriter& w, size_t functions, uint64_t queued, uint64_t running,
                     size_t worker_count, bool jenkins_enabled, size_t masters) {
  Key(w, "totals");
  w.StartObject();
  KeyU(w, "functions", functions);
  KeyU(w, "queued", queued);
  KeyU(w, "running", running);
  KeyU(w, "workers", worker_count);
  w.EndObject();

  Key(w, "jenkins");
  w.StartObject();
  KeyB(w, "enabled", jenkins_enabled);
  KeyU(w, "masters", masters);
  w.EndObject();
}

void WriteWorker(JsonWriter& w, const WorkerInfo& wk) {
  w.StartObject();
  KeyI(w, "fd", wk.fd);
  KeyStr(w, "address", wk.address);
  KeyStr(w, "client_id", wk.client_id);
  StrArray(w, "functions", wk.functions);
  StrArray(w, "running", wk.running);
  KeyB(w, "sleeping", wk.sleeping);
  w.EndObject();
}

void WriteJob(JsonWriter& w, const JobInfo& j) {
  w.StartObject();
  KeyStr(w, "handle", j.handle);
  KeyStr(w, "function", j.function);
  KeyStr(w, "unique", j.unique);
  KeyStr(w, "priority", j.priority);
  KeyStr(w, "state", j.state);
  KeyB(w, "background", j.background);
  KeyB(w, "ignored", j.ignored);
  KeyI(w, "age_ms", j.age_ms);
  KeyI(w, "when", j.when);
  KeyU(w, "retries", j.retries);
  KeyStr(w, "worker", j.worker);
  w.EndObject();
}

void WriteJobsHead(JsonWriter& w, const std::string& function, size_t limit) {
  Key(w, "function");
  if (function.empty()) {
    w.Null();
  } else {
    Str(w, function);
  }
  KeyU(w, "limit", limit);
}

}  // namespace

std::string StatusJson(const ServerInfo& server, const std::vector<FunctionInfo>& functions,
                       size_t worker_count, bool jenkins_enabled, size_t masters) {
  Document doc;
  JsonWriter& w = doc.w();
  w.StartObject();
  WriteServerAndStore(w, server);
  uint64_t queued = 0, running = 0;
  Key(w, "functions");
  w.StartArray();
  for (const FunctionInfo& f : functions) {
    WriteFunction(w, f);
    queued += f.queued[0] + f.queued[1] + f.queued[2];
    running += f.running;
  }
  w.EndArray();
  WriteStatusTail(w, functions.size(), queued, running, worker_count, jenkins_enabled, masters);
  w.EndObject();
  return doc.Done();
}

std::string WorkersJson(const std::vector<WorkerInfo>& workers) {
  Document doc;
  JsonWriter& w = doc.w();
  w.StartObject();
  Key(w, "workers");
  w.StartArray();
  for (const WorkerInfo& wk : workers) WriteWorker(w, wk);
  w.EndArray();
  w.EndObject();
  return doc.Done();
}

std::string JobsJson(const std::string& function, size_t limit, size_t matched,
                     const std::vector<JobInfo>& jobs) {
  Document doc;
  JsonWriter& w = doc.w();
  w.StartObject();
  WriteJobsHead(w, function, limit);
  KeyU(w, "matched", matched);
  Key(w, "jobs");
  w.StartArray();
  for (const JobInfo& j : jobs) WriteJob(w, j);
  w.EndArray();
  w.EndObject();
  return doc.Done();
}

std::string JenkinsJson(bool enabled, const std::vector<jenkins::MasterSummary>& masters) {
  Document doc;
  JsonWriter& w = doc.w();
  w.StartObject();
  KeyB(w, "enabled", enabled);
  Key(w, "masters");
  w.StartArray();
  for (const jenkins::MasterSummary& m : masters) {
    w.StartObject();
    KeyStr(w, "name", m.name);
    KeyStr(w, "manager", m.manager);
    KeyStr(w, "base_url", m.base_url);
    KeyStr(w, "health", m.health);
    KeyStr(w, "last_error", m.last_error);
    KeyB(w, "tls_verify", m.tls_verify);
    KeyB(w, "enabled", m.enabled);
    KeyB(w, "quieting_down", m.quieting_down);
    KeyStr(w, "version", m.version);
    KeyI(w, "last_poll_age_ms", m.last_poll_age_ms);
    KeyI(w, "functions", m.functions);
    KeyU(w, "requests", m.requests);
    KeyU(w, "request_errors", m.request_errors);
    KeyU(w, "dispatches", m.dispatches);
    KeyU(w, "requeues", m.requeues);
    KeyU(w, "dropped_parameters", m.dropped_parameters);
    // The summary's counts (jenkins/summary.h), as in `jenkins list` and /metrics.
    Key(w, "executors");
    w.StartObject();
    KeyI(w, "total", m.executors.total);
    KeyI(w, "busy", m.executors.busy);
    KeyI(w, "idle", m.executors.idle);
    KeyI(w, "offline", m.executors.offline);
    w.EndObject();
    Key(w, "nodes");
    w.StartArray();
    for (const jenkins::NodeSummary& n : m.nodes) {
      w.StartObject();
      KeyStr(w, "name", n.name);
      KeyStr(w, "mode", n.mode);
      KeyB(w, "offline", n.offline);
      KeyB(w, "temporarily_offline", n.temporarily_offline);
      StrArray(w, "labels", n.labels);
      KeyI(w, "free", n.free);
      KeyI(w, "reservations", n.reservations);
      Key(w, "executors");
      w.StartArray();
      for (const jenkins::ExecutorSummary& e : n.executors) {
        w.StartObject();
        KeyI(w, "number", e.number);
        KeyStr(w, "worker", e.worker);
        KeyB(w, "idle", e.idle);
        KeyStr(w, "build_url", e.build_url);
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    Key(w, "builds");
    w.StartArray();
    for (const jenkins::BuildSummary& b : m.builds) {
      w.StartObject();
      KeyStr(w, "handle", b.handle);
      KeyStr(w, "unique", b.unique);
      KeyStr(w, "function", b.function);
      KeyStr(w, "job", b.job);
      KeyStr(w, "state", b.state);
      KeyI(w, "queue_id", b.queue_id);
      KeyI(w, "number", b.number);
      KeyStr(w, "url", b.url);
      KeyStr(w, "node", b.node);
      KeyI(w, "age_ms", b.age_ms);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return doc.Done();
}

std::string ErrorJson(int status, const std::string& message) {
  Document doc;
  JsonWriter& w = doc.w();
  w.StartObject();
  Key(w, "error");
  w.StartObject();
  KeyI(w, "status", status);
  KeyStr(w, "message", message);
  w.EndObject();
  w.EndObject();
  return doc.Done();
}

// ---- streamed documents

namespace {

// A document written a slice at a time by one Writer: Produce() points the writer's stream at
// the slice's string, then Step() writes until the slice is full or the document ends.
class StreamedJson : public ReplyProducer {
 public:
  StreamedJson() : writer_(stream_) {}

  bool Produce(std::string* out, size_t budget) final {
    stream_.out = out;
    const size_t start = out->size();
    const bool done = Step(writer_, [&] { return out->size() - start >= budget; });
    stream_.out = nullptr;
    if (done) out->push_back('\n');
    return done;
  }

 protected:
  // Writes entries until `full()` or the end of the document (then true).
  virtual bool Step(JsonWriter& w, const std::function<bool()>& full) = 0;

 private:
  StringOut stream_;
  JsonWriter writer_;
};

class StatusStream final : public StreamedJson {
 public:
  StatusStream(const broker::Broker& broker, ServerInfo server, bool jenkins_enabled,
               size_t masters)
      : broker_(broker), server_(std::move(server)), jenkins_(jenkins_enabled), masters_(masters) {}

 private:
  bool Step(JsonWriter& w, const std::function<bool()>& full) override {
    if (!started_) {
      started_ = true;
      w.StartObject();
      WriteServerAndStore(w, server_);
      Key(w, "functions");
      w.StartArray();
    }
    const broker::Function* fn =
        last_ ? broker_.FunctionAfter(*last_) : broker_.FunctionAfter("", /*inclusive=*/true);
    const broker::Function* listed = nullptr;
    while (fn != nullptr && !full()) {
      const FunctionInfo f = InfoOf(*fn);
      WriteFunction(w, f);
      ++count_;
      queued_ += f.queued[0] + f.queued[1] + f.queued[2];
      running_ += f.running;
      listed = fn;
      fn = broker_.FunctionAfter(fn->name());
    }
    if (fn != nullptr) {
      if (listed != nullptr) last_ = std::string(listed->name());
      return false;
    }
    w.EndArray();
    // The totals are those of the functions listed, so the document adds up.
    WriteStatusTail(w, count_, queued_, running_, broker_.WorkerPeers().size(), jenkins_, masters_);
    w.EndObject();
    return true;
  }

  const broker::Broker& broker_;
  const ServerInfo server_;
  const bool jenkins_;
  const size_t masters_;
  bool started_ = false;
  std::optional<std::string> last_;  // the last name listed
  size_t count_ = 0;
  uint64_t queued_ = 0, running_ = 0;
};

class WorkersStream final : public StreamedJson {
 public:
  explicit WorkersStream(const broker::Broker& broker) : broker_(broker) {}

 private:
  static constexpr size_t kBatch = 256;

  bool Step(JsonWriter& w, const std::function<bool()>& full) override {
    if (!started_) {
      started_ = true;
      w.StartObject();
      Key(w, "workers");
      w.StartArray();
    }
    while (!full()) {
      const std::vector<const broker::Peer*> batch =
          broker_.WorkerPeersAfter(last_ ? &*last_ : nullptr, kBatch);
      for (const broker::Peer* peer : batch) WriteWorker(w, InfoOf(*peer));
      if (batch.size() < kBatch) {
        w.EndArray();
        w.EndObject();
        return true;
      }
      last_ = broker::Broker::KeyOf(*batch.back());
    }
    return false;
  }

  const broker::Broker& broker_;
  bool started_ = false;
  std::optional<broker::Broker::WorkerKey> last_;
};

class JobsStream final : public StreamedJson {
 public:
  JobsStream(const broker::Broker& broker, std::string function, size_t limit, int64_t now_ms,
             int64_t now_unix)
      : cursor_(broker),
        function_(std::move(function)),
        limit_(limit),
        now_ms_(now_ms),
        now_unix_(now_unix) {}

 private:
  bool Step(JsonWriter& w, const std::function<bool()>& full) override {
    if (!started_) {
      started_ = true;
      w.StartObject();
      WriteJobsHead(w, function_, limit_);
      Key(w, "jobs");
      w.StartArray();
    }
    // Bounded work per slice even when nothing more is written (past the limit, or a filter
    // that few jobs match): the walk goes on to count `matched`.
    for (size_t seen = 0; seen < kReplySliceEntries && !full(); ++seen) {
      const broker::Job* job = cursor_.Next();
      if (job == nullptr) {
        w.EndArray();
        // After the list here (it is counted while listing); the same key as before.
        KeyU(w, "matched", matched_);
        w.EndObject();
        return true;
      }
      if (!JobListed(*job, function_)) continue;
      if (matched_++ < limit_) WriteJob(w, InfoOf(*job, now_ms_, now_unix_));
    }
    return false;
  }

  broker::Broker::JobCursor cursor_;
  const std::string function_;
  const size_t limit_;
  const int64_t now_ms_, now_unix_;
  bool started_ = false;
  size_t matched_ = 0;
};

}  // namespace

std::unique_ptr<ReplyProducer> StreamStatusJson(const broker::Broker& broker, ServerInfo server,
                                                bool jenkins_enabled, size_t masters) {
  return std::make_unique<StatusStream>(broker, std::move(server), jenkins_enabled, masters);
}

std::unique_ptr<ReplyProducer> StreamWorkersJson(const broker::Broker& broker) {
  return std::make_unique<WorkersStream>(broker);
}

std::unique_ptr<ReplyProducer> StreamJobsJson(const broker::Broker& broker, std::string function,
                                              size_t limit, int64_t now_ms, int64_t now_unix) {
  return std::make_unique<JobsStream>(broker, std::move(function), limit, now_ms, now_unix);
}

}  // namespace roundhouse::server::http
