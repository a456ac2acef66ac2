// The journal (a part of Adapter, see adapter.cc): dispatched builds and restart reconciliation
// (doc/jenkins.md §4.11). An entry per Gearman handle lives in the queue database, written through
// the store's writer thread: TRIGGERING is committed before the trigger POST it authorises; QUEUED
// and STARTED follow as the build moves; the entry is deleted when the build is done with.
//
// At start-up each adapter gets its master's entries. A background job the broker restored is
// re-bound at once (held by the manager worker, so no other master can dispatch it again); a
// foreground job is re-bound if its client resubmits the same function and unique within
// `resume_window_s` (J5). Once the master is reachable, re-bound entries are reconciled: a
// TRIGGERING entry is looked up by its unique_param value (adopted or requeued), a QUEUED one
// followed from its queue item, a STARTED one from its build, whose WORK_DATA and WORK_STATUS
// are sent again. Entries nobody re-binds get `orphan_policy` (J6): `abort` cancels the item or
// stops the build, `ignore` forgets them. No build is ever triggered twice by a restart.

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cinttypes>
#include <utility>

#include "jenkins/adapter_internal.h"
#include "jenkins/json_document.h"
#include "server/base/log.h"

namespace roundhouse::jenkins {

namespace {

const char* StateName(Adapter::JournalState s) {
  switch (s) {
    case Adapter::JournalState::kTriggering:
      return "TRIGGERING";
    case Adapter::JournalState::kQueued:
      return "QUEUED";
    case Adapter::JournalState::kStarted:
      return "STARTED";
  }
  return "?";
}

}  // namespace

std::string Adapter::EncodeJournal(const Build& b, JournalState state) const {
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
  w.String(StateName(state));
  str("function", b.function);
  str("unique", b.unique);
  str("job", b.full_name);
  str("node", b.node);
  w.Key("queue_id");
  w.Int64(b.queue_id);
  w.Key("number");
  w.Int64(b.number);
  str("url", b.url);
  w.Key("offline");
  w.Bool(b.offline_requested);
  w.Key("offline_on_complete");
  w.Bool(b.offline_on_complete);
  w.EndObject();
  return std::string(out.GetString(), out.GetSize());
}

void Adapter::Journal(Build& b, JournalState state, std::function<void(Status)> done) {
  if (store_ == nullptr) {
    if (done) done(Status::Ok());
    return;
  }
  b.journaled = true;
  store_->PutJournal(settings_.name, b.handle, EncodeJournal(b, state), std::move(done));
}

void Adapter::Unjournal(const Build& b) {
  if (store_ != nullptr && b.journaled) store_->DeleteJournal(settings_.name, b.handle);
}

void Adapter::Recover(const std::vector<storage::JournalRow>& rows) {
  const int64_t now = clock_.MonotonicMs();
  for (const storage::JournalRow& row : rows) {
    rapidjson::Document doc;
    if (!ParseJsonObject(row.entry, "journal entry", &doc).ok()) {
      RH_LOG(kError, "jenkins master=%s handle=%s: unreadable journal entry dropped",
             settings_.name.c_str(), row.handle.c_str());
      if (store_ != nullptr) store_->DeleteJournal(settings_.name, row.handle);
      continue;
    }
    const rapidjson::Document& entry = doc;  // const iterators: unambiguous under clang C++20
    auto text = [&entry](const char* key) {
      auto it = entry.FindMember(key);
      return it != entry.MemberEnd() && it->value.IsString()
                 ? std::string(it->value.GetString(), it->value.GetStringLength())
                 : std::string();
    };
    auto number = [&entry](const char* key) {
      auto it = entry.FindMember(key);
      return it != entry.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : int64_t{0};
    };
    auto flag = [&entry](const char* key) {
      auto it = entry.FindMember(key);
      return it != entry.MemberEnd() && it->value.IsBool() && it->value.GetBool();
    };
    auto build = std::make_unique<Build>();
    Build& b = *build;
    b.handle = row.handle;
    b.function = text("function");
    b.unique = text("unique");
    b.full_name = text("job");
    b.job_path = JobPath(b.full_name);
    b.node = text("node");
    b.queue_id = number("queue_id");
    b.number = number("number");
    b.url = text("url");
    b.offline_requested = flag("offline");
    b.offline_on_complete = flag("offline_on_complete");
    const std::string state = text("state");
    b.recovered = state == "STARTED"  ? JournalState::kStarted
                  : state == "QUEUED" ? JournalState::kQueued
                                      : JournalState::kTriggering;
    b.recovering = true;
    b.journaled = true;
    b.claimed_ms = now;
    b.reserved = b.recovered != JournalState::kStarted;
    b.resume_until_ms = now + settings_.resume_window_ms;
    // A background job restored by the broker is re-bound now, before any master's first
    // dispatch round can hand it out again.
    if (PseudoWorker* manager = manager_->worker();
        manager != nullptr && broker_.GrabHandle(*manager, b.handle) != nullptr) {
      b.holder = manager;
    }
    RH_LOG(kNotice, "jenkins master=%s handle=%s: journal: %s %s%s", settings_.name.c_str(),
           b.handle.c_str(), state.c_str(), b.full_name.c_str(),
           b.holder != nullptr ? " (job restored, re-bound)" : " (awaiting its client)");
    builds_.emplace(b.handle, std::move(build));
  }
}

// J5: a client resubmitting the function and unique of a journalled build within
// resume_window_s gets that build back instead of a new one.
void Adapter::Resume() {
  PseudoWorker* manager = manager_->worker();
  if (manager == nullptr) return;
  const int64_t now = clock_.MonotonicMs();
  for (auto& [handle, b] : builds_) {
    if (!b->recovering || b->holder != nullptr || b->withdrawn) continue;
    if (now >= b->resume_until_ms) {
      // J6: nobody came back for it.
      if (settings_.orphan_policy == OrphanPolicy::kIgnore) {
        b->forget_orphan = true;
      } else {
        b->withdrawn = true;  // handled (cancelled or stopped, silently) when reconciled
      }
      continue;
    }
    const std::string queued = broker_.FindQueued(b->function, b->unique);
    if (queued.empty()) continue;
    if (broker_.GrabHandle(*manager, queued) == nullptr) continue;
    RH_LOG(kNotice,
           "jenkins master=%s handle=%s: resubmitted as %s; re-bound to the journalled build",
           settings_.name.c_str(), handle.c_str(), queued.c_str());
    b->holder = manager;
    b->rebound_handle = queued;
  }
  // Entries whose job was resubmitted under a new handle continue under that handle.
  std::vector<std::string> renamed;
  for (auto& [handle, b] : builds_) {
    if (!b->rebound_handle.empty()) renamed.push_back(handle);
  }
  for (const std::string& old : renamed) {
    auto node = builds_.extract(old);
    Build& b = *node.mapped();
    Unjournal(b);
    b.handle = std::exchange(b.rebound_handle, std::string());
    node.key() = b.handle;
    builds_.insert(std::move(node));
  }
}

// Entries from the journal, once the master answers: pick up where they were.
void Adapter::ReconcileRecovered() {
  std::vector<std::string> ready;
  for (const auto& [handle, b] : builds_) {
    if (b->recovering && (b->holder != nullptr || b->withdrawn || b->forget_orphan)) {
      ready.push_back(handle);
    }
  }
  for (const std::string& handle : ready) {
    Build* b = FindBuild(handle);
    if (b == nullptr) continue;
    b->recovering = false;
    if (b->forget_orphan) {
      RH_LOG(kNotice,
             "jenkins master=%s handle=%s: orphaned build forgotten (orphan_policy = ignore)",
             settings_.name.c_str(), handle.c_str());
      Forget(handle);
      continue;
    }
    if (b->withdrawn) {
      RH_LOG(kNotice,
             "jenkins master=%s handle=%s: orphaned %s %s: cancelling it (orphan_policy = abort)",
             settings_.name.c_str(), handle.c_str(), b->full_name.c_str(), StateName(b->recovered));
    }
    // Re-applied under both policies (J6): a node it asked to take offline.
    if (b->offline_requested && !b->node.empty()) taints_->Taint(b->node, handle);
    switch (b->recovered) {
      case JournalState::kTriggering:
        Move(*b, BuildTransition::kRecoveredTriggering);
        SearchLostTrigger(*b, 0);
        break;
      case JournalState::kQueued:
        Move(*b, BuildTransition::kRecoveredQueued);
        b->queued_ms = clock_.MonotonicMs();
        b->next_poll_ms = b->queued_ms;
        if (b->withdrawn) CancelQueued(*b);
        break;
      case JournalState::kStarted:
        b->build_path = rest_->RelativePath(b->url);
        if (b->build_path.empty()) b->build_path = b->job_path + std::to_string(b->number) + "/";
        if (b->withdrawn) {
          AbortBuild(*b, BuildTransition::kRecoveredAbort);
        } else {
          Move(*b, BuildTransition::kRecoveredStarted);
          b->started_ms = clock_.MonotonicMs();
          b->poll_interval_ms = settings_.poll_build_ms;
          PollBuild(*b);  // the start packets are sent again, then following goes on (J5)
        }
        break;
    }
  }
}

}  // namespace roundhouse::jenkins
