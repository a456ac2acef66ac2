#include "server/http/api.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string_view>

#include "protocol/printable.h"

namespace roundhouse::server::http {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

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

std::string Done(const rapidjson::StringBuffer& buffer) {
  std::string out(buffer.GetString(), buffer.GetSize());
  out.push_back('\n');
  return out;
}

}  // namespace

std::string StatusJson(const ServerInfo& server, const std::vector<FunctionInfo>& functions,
                       size_t worker_count, bool jenkins_enabled, size_t masters) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
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

  uint64_t queued = 0, running = 0;
  Key(w, "functions");
  w.StartArray();
  for (const FunctionInfo& f : functions) {
    w.StartObject();
    KeyStr(w, "name", f.name);
    Key(w, "queued");
    w.StartObject();
    KeyU(w, "high", f.queued[0]);
    KeyU(w, "normal", f.queued[1]);
    KeyU(w, "low", f.queued[2]);
    w.EndObject();
    const uint64_t total = f.queued[0] + f.queued[1] + f.queued[2];
    KeyU(w, "queued_total", total);
    KeyU(w, "running", f.running);
    KeyU(w, "workers", f.workers);
    KeyU(w, "submitted", f.submitted);
    KeyU(w, "completed", f.completed);
    KeyU(w, "failed", f.failed);
    w.EndObject();
    queued += total;
    running += f.running;
  }
  w.EndArray();

  Key(w, "totals");
  w.StartObject();
  KeyU(w, "functions", functions.size());
  KeyU(w, "queued", queued);
  KeyU(w, "running", running);
  KeyU(w, "workers", worker_count);
  w.EndObject();

  Key(w, "jenkins");
  w.StartObject();
  KeyB(w, "enabled", jenkins_enabled);
  KeyU(w, "masters", masters);
  w.EndObject();
  w.EndObject();
  return Done(buffer);
}

std::string WorkersJson(const std::vector<WorkerInfo>& workers) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  Key(w, "workers");
  w.StartArray();
  for (const WorkerInfo& wk : workers) {
    w.StartObject();
    KeyI(w, "fd", wk.fd);
    KeyStr(w, "address", wk.address);
    KeyStr(w, "client_id", wk.client_id);
    StrArray(w, "functions", wk.functions);
    StrArray(w, "running", wk.running);
    KeyB(w, "sleeping", wk.sleeping);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Done(buffer);
}

std::string JobsJson(const std::string& function, size_t limit, size_t matched,
                     const std::vector<JobInfo>& jobs) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  Key(w, "function");
  if (function.empty()) {
    w.Null();
  } else {
    Str(w, function);
  }
  KeyU(w, "limit", limit);
  KeyU(w, "matched", matched);
  Key(w, "jobs");
  w.StartArray();
  for (const JobInfo& j : jobs) {
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
  w.EndArray();
  w.EndObject();
  return Done(buffer);
}

std::string JenkinsJson(bool enabled, const std::vector<jenkins::MasterSummary>& masters) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
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
  return Done(buffer);
}

std::string ErrorJson(int status, const std::string& message) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  Key(w, "error");
  w.StartObject();
  KeyI(w, "status", status);
  KeyStr(w, "message", message);
  w.EndObject();
  w.EndObject();
  return Done(buffer);
}

}  // namespace roundhouse::server::http
