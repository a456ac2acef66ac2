// Journal: the entries of one master's dispatched builds in the queue database (doc/jenkins.md
// §4.11), so a restarted server re-binds its builds instead of triggering them again. One entry
// per Gearman handle, written through the store's writer thread: TRIGGERING is committed before
// the trigger POST it authorises (J1); QUEUED and STARTED follow as the build moves; the entry is
// deleted when the build is done with. What is done with entries read back at start-up is the
// BuildTracker's (build_recovery.cc).
//
// Ownership: owned by its Adapter; the store (null: no journal, every write succeeds at once)
// outlives it. Thread-safety: loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "storage/job_store.h"

namespace roundhouse::jenkins {

class Journal {
 public:
  // The step of §4.8 an entry records.
  enum class State { kTriggering, kQueued, kStarted };

  // One entry, as stored (a JSON object, version 1).
  struct Entry {
    State state = State::kTriggering;
    std::string function;
    std::string unique;
    std::string job;  // fullName
    std::string node;
    int64_t queue_id = 0;
    int64_t number = 0;
    std::string url;
    bool offline = false;  // OFFLINE_NODE_WHEN_COMPLETE
    bool offline_on_complete = false;
  };

  // `store` may be null, or not durable: then nothing is kept.
  Journal(storage::JobStore* store, std::string master)
      : store_(store != nullptr && store->durable() ? store : nullptr),
        master_(std::move(master)) {}
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  bool enabled() const { return store_ != nullptr; }
  // Writes (replaces) the entry of `handle`; `done` (optional) runs once it is committed, never
  // synchronously with a store, at once without one.
  void Write(const std::string& handle, const Entry& entry, std::function<void(Status)> done = {});
  // Deletes the entry of `handle` (idempotent).
  void Erase(const std::string& handle);

  static std::string Encode(const Entry& entry);
  // An entry read back; nullopt if it is not a JSON object.
  static std::optional<Entry> Decode(std::string_view text);
  static const char* StateName(State state);

 private:
  storage::JobStore* store_;  // null: no journal
  std::string master_;
};

}  // namespace roundhouse::jenkins
