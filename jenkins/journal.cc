// The journal's entries and their storage: see journal.h.
#include "jenkins/journal.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <utility>

#include "jenkins/json_document.h"

namespace roundhouse::jenkins {

const char* Journal::StateName(State s) {
  switch (s) {
    case State::kTriggering:
      return "TRIGGERING";
    case State::kQueued:
      return "QUEUED";
    case State::kStarted:
      return "STARTED";
  }
  return "?";
}

std::string Journal::Encode(const Entry& e) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  auto str = [&w](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  w.Key("v");
  w.Int(1);
  w.Key("state");
  w.String(StateName(e.state));
  str("function", e.function);
  str("unique", e.unique);
  str("job", e.job);
  str("node", e.node);
  w.Key("queue_id");
  w.Int64(e.queue_id);
  w.Key("number");
  w.Int64(e.number);
  str("url", e.url);
  w.Key("offline");
  w.Bool(e.offline);
  w.Key("offline_on_complete");
  w.Bool(e.offline_on_complete);
  w.EndObject();
  return std::string(out.GetString(), out.GetSize());
}

std::optional<Journal::Entry> Journal::Decode(std::string_view text) {
  rapidjson::Document doc;
  if (!ParseJsonObject(text, "journal entry", &doc).ok()) return std::nullopt;
  const rapidjson::Value& entry = doc;
  Entry e;
  e.function = OptionalMember<std::string>(entry, "function").value_or("");
  e.unique = OptionalMember<std::string>(entry, "unique").value_or("");
  e.job = OptionalMember<std::string>(entry, "job").value_or("");
  e.node = OptionalMember<std::string>(entry, "node").value_or("");
  e.queue_id = OptionalMember<int64_t>(entry, "queue_id").value_or(0);
  e.number = OptionalMember<int64_t>(entry, "number").value_or(0);
  e.url = OptionalMember<std::string>(entry, "url").value_or("");
  e.offline = OptionalMember<bool>(entry, "offline").value_or(false);
  e.offline_on_complete = OptionalMember<bool>(entry, "offline_on_complete").value_or(false);
  const std::string state = OptionalMember<std::string>(entry, "state").value_or("");
  e.state = state == "STARTED"  ? State::kStarted
            : state == "QUEUED" ? State::kQueued
                                : State::kTriggering;
  return e;
}

void Journal::Write(const std::string& handle, const Entry& entry,
                    std::function<void(Status)> done) {
  if (store_ == nullptr) {
    if (done) done(Status::Ok());
    return;
  }
  store_->PutJournal(master_, handle, Encode(entry), std::move(done));
}

void Journal::Erase(const std::string& handle) {
  if (store_ != nullptr) store_->DeleteJournal(master_, handle);
}

}  // namespace roundhouse::jenkins
