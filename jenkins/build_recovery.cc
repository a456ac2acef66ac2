// The BuildTracker's part of the journal (doc/jenkins.md §4.11; entries: journal.h). At start-up
// each adapter gets its master's entries. A background job the broker restored is re-bound at
// once (held by the manager worker, so no other master can dispatch it again); a foreground job
// is re-bound if its client resubmits the same function and unique within `resume_window_s`
// (J5). Once the master is reachable, re-bound entries are reconciled: a TRIGGERING entry is
// looked up by its unique_param value (adopted or requeued), a QUEUED one followed from its queue
// item, a STARTED one from its build, whose WORK_DATA and WORK_STATUS are sent again. Entries
// nobody re-binds get `orphan_policy` (J6): `abort` cancels the item or stops the build,
// `ignore` forgets them. No build is ever triggered twice by a restart.

#include <utility>

#include "base/log.h"
#include "jenkins/build_tracker.h"

namespace roundhouse::jenkins {

void BuildTracker::Recover(const std::vector<storage::JournalRow>& rows) {
  const int64_t now = clock_.MonotonicMs();
  for (const storage::JournalRow& row : rows) {
    std::optional<Journal::Entry> entry = Journal::Decode(row.entry);
    if (!entry) {
      RH_LOG(kError, "jenkins master=%s handle=%s: unreadable journal entry dropped",
             settings_.name.c_str(), row.handle.c_str());
      journal_.Erase(row.handle);
      continue;
    }
    auto build = std::make_unique<Build>();
    Build& b = *build;
    b.handle = row.handle;
    b.function = entry->function;
    b.unique = entry->unique;
    b.full_name = entry->job;
    b.job_path = JobPath(b.full_name);
    b.node = entry->node;
    b.queue_id = entry->queue_id;
    b.number = entry->number;
    b.url = entry->url;
    b.offline_requested = entry->offline;
    b.offline_on_complete = entry->offline_on_complete;
    b.recovered = entry->state;
    b.state = BuildState::kRecovered;
    b.journaled = true;
    b.claimed_ms = now;
    b.reserved = b.recovered != Journal::State::kStarted;
    b.resume_until_ms = now + settings_.resume_window_ms;
    // A background job restored by the broker is re-bound now, before any master's first
    // dispatch round can hand it out again.
    if (PseudoWorker* manager = host_.manager_worker();
        manager != nullptr && broker_.GrabHandle(*manager, b.handle) != nullptr) {
      b.holder = manager;
    }
    RH_LOG(kNotice, "jenkins master=%s handle=%s: journal: %s %s%s", settings_.name.c_str(),
           b.handle.c_str(), Journal::StateName(b.recovered), b.full_name.c_str(),
           b.holder != nullptr ? " (job restored, re-bound)" : " (awaiting its client)");
    builds_.emplace(b.handle, std::move(build));
  }
}

// J5: a client resubmitting the function and unique of a journalled build within
// resume_window_s gets that build back instead of a new one.
void BuildTracker::Resume() {
  PseudoWorker* manager = host_.manager_worker();
  if (manager == nullptr) return;
  const int64_t now = clock_.MonotonicMs();
  for (auto& [handle, b] : builds_) {
    if (b->state != BuildState::kRecovered || b->holder != nullptr || b->withdrawn) continue;
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
    Unrecord(b);
    b.handle = std::exchange(b.rebound_handle, std::string());
    node.key() = b.handle;
    builds_.insert(std::move(node));
  }
}

// Entries from the journal, once the master answers: pick up where they were.
void BuildTracker::ReconcileRecovered() {
  std::vector<std::string> ready;
  for (const auto& [handle, b] : builds_) {
    if (b->state == BuildState::kRecovered &&
        (b->holder != nullptr || b->withdrawn || b->forget_orphan)) {
      ready.push_back(handle);
    }
  }
  for (const std::string& handle : ready) {
    Build* b = FindBuild(handle);
    if (b == nullptr) continue;
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
             settings_.name.c_str(), handle.c_str(), b->full_name.c_str(),
             Journal::StateName(b->recovered));
    }
    // Re-applied under both policies (J6): a node it asked to take offline.
    if (b->offline_requested && !b->node.empty()) taints_.Taint(b->node, handle);
    switch (b->recovered) {
      case Journal::State::kTriggering:
        Move(*b, BuildTransition::kRecoveredTriggering);
        SearchLostTrigger(*b, 0);
        break;
      case Journal::State::kQueued:
        Move(*b, BuildTransition::kRecoveredQueued);
        b->queued_ms = clock_.MonotonicMs();
        b->next_poll_ms = b->queued_ms;
        if (b->withdrawn) CancelQueued(*b);
        break;
      case Journal::State::kStarted:
        b->build_path = rest_.RelativePath(b->url);
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
