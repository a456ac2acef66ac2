// Hub: the set of registered Jenkins masters, one Adapter each (doc/jenkins.md §4.1), and the
// dispatch rounds that offer queued jobs to them (§4.4 D3, D4).
//
// A round runs from its own loop callback whenever any adapter asks (a pseudo-worker was woken
// by a submission, a snapshot arrived, capacity was released, a job was put back). It visits
// masters in descending `weight`, rotating the start among equal weights, so ties share work.
//
// Masters come from the command line and config file at start-up (`static`), and from admin
// `jenkins add` at runtime (persisted through the `persist` callback). `Remove` drains a master
// first: no new builds, in-flight ones followed to their end, then the adapter is closed.
//
// Thread-safety: loop thread only.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "jenkins/adapter.h"
#include "jenkins/master_settings.h"
#include "jenkins/summary.h"
#include "server/broker/broker.h"

namespace roundhouse::jenkins {

// `k=v,k=v,...` (the --jenkins flag's and admin `jenkins add`'s form; values cannot contain ',').
Result<std::map<std::string, std::string>> ParseSettingList(std::string_view text);
// Persistence encoding of raw settings: one `key=value` line each (keys and values never contain
// a newline: every source is line-based).
std::string EncodeSettings(const std::map<std::string, std::string>& raw);
Result<std::map<std::string, std::string>> DecodeSettings(std::string_view text);

class Hub final : public AdapterHost {
 public:
  // `store` (may be null) keeps the adapters' journal.
  Hub(uv_loop_t* loop, broker::Broker& broker, Clock& clock, storage::JobStore* store);
  ~Hub() override;
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Registers and starts a master. Refused: a duplicate name or manager name, or a master still
  // draining under that name. `runtime` masters (admin `jenkins add`) are reported through the
  // persistence callback.
  Status Add(MasterSettings settings, bool runtime);
  // Starts draining `name`; the adapter is closed once its builds are done. Refused if unknown.
  Status Remove(std::string_view name);
  bool Has(std::string_view name) const;
  // Start-up, before any Add: the journal rows read from the store; each master registered
  // afterwards recovers its own. Rows of masters never registered are reported by
  // ReportUnclaimedJournal() and kept.
  void SetJournal(std::vector<storage::JournalRow> rows);
  void ReportUnclaimedJournal() const;

  // Called with (name, raw settings) when a runtime master is added, and (name, nullopt-like
  // empty map with `removed` = true) when any master is removed, so the server can persist them.
  using PersistFn = std::function<void(const std::string& name,
                                       const std::map<std::string, std::string>* raw)>;
  void SetPersist(PersistFn persist) { persist_ = std::move(persist); }

  // §4.3 F5: jobs queued longer than this for a function the masters listed and nobody serves
  // end with an error. 0 = never (the default until set).
  void SetUnroutableTimeout(int64_t ms);

  // What settings from the admin port (and stored from it) may read: see SettingsTrust. Set once
  // at start-up (--jenkins-token-dir); operator_written is always false here.
  void SetRuntimeTokenDir(std::string dir) { runtime_trust_.token_dir = std::move(dir); }
  const SettingsTrust& runtime_trust() const { return runtime_trust_; }

  std::vector<MasterSummary> Summaries() const;
  // `jenkins show NAME`: settings (secrets hidden) and state; empty if unknown.
  std::vector<std::pair<std::string, std::string>> Describe(std::string_view name) const;

  // Graceful shutdown: no master takes a new build; builds in flight are followed on. Unlike
  // Remove(), nothing is unregistered or forgotten in the database.
  void DrainAll();

  // Closes every adapter (see Adapter::Close), then calls `closed`.
  void Close(std::function<void()> closed);

  // ---- AdapterHost
  void RequestRound() override;

 private:
  struct Entry {
    std::unique_ptr<Adapter> adapter;
    bool runtime = false;
    bool removing = false;
  };
  static void OnRound(uv_timer_t* timer);
  static void OnSweep(uv_timer_t* timer);
  void FailUnroutable();
  void Round();
  void Reap();

  uv_loop_t* loop_;
  broker::Broker& broker_;
  Clock& clock_;
  storage::JobStore* store_;
  std::map<std::string, std::vector<storage::JournalRow>, std::less<>> journal_;  // by master
  std::map<std::string, Entry, std::less<>> masters_;
  // Adapters being closed (removed, or all at Close()).
  std::vector<std::unique_ptr<Adapter>> closing_;
  uv_timer_t round_timer_{};
  uv_timer_t sweep_timer_{};  // F5, once a second while a timeout is set
  int64_t unroutable_timeout_ms_ = 0;
  SettingsTrust runtime_trust_{/*operator_written=*/false, {}};
  bool round_pending_ = false;
  size_t rotation_ = 0;
  bool closed_ = false;
  int pending_closes_ = 0;
  std::function<void()> on_closed_;
  PersistFn persist_;
};

}  // namespace roundhouse::jenkins
