#include "jenkins/hub.h"

#include <algorithm>
#include <set>
#include <utility>

#include "base/log.h"

namespace roundhouse::jenkins {

namespace {

// `key=value` items separated by `separator`; empty items are skipped. Duplicate keys are an
// error when `refuse_duplicates`, else the first stays.
Result<std::map<std::string, std::string>> SplitKeyValues(std::string_view text, char separator,
                                                          bool refuse_duplicates) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    const size_t end = text.find(separator);
    const std::string_view item = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return Status::Error("setting '" + std::string(item.substr(0, eq)) +
                           "' is not KEY=VALUE");
    }
    auto [it, inserted] = out.emplace(item.substr(0, eq), item.substr(eq + 1));
    if (!inserted && refuse_duplicates) {
      return Status::Error("key '" + it->first + "' given twice");
    }
  }
  return out;
}

}  // namespace

Result<std::map<std::string, std::string>> ParseSettingList(std::string_view text) {
  return SplitKeyValues(text, ',', /*refuse_duplicates=*/true);
}

std::string EncodeSettings(const std::map<std::string, std::string>& raw) {
  std::string out;
  for (const auto& [key, value] : raw) out += key + "=" + value + "\n";
  return out;
}

Result<std::map<std::string, std::string>> DecodeSettings(std::string_view text) {
  return SplitKeyValues(text, '\n', /*refuse_duplicates=*/false);
}

Hub::Hub(uv_loop_t* loop, broker::Broker& broker, Clock& clock, storage::JobStore* store)
    : loop_(loop), broker_(broker), clock_(clock), store_(store) {
  uv_timer_init(loop_, &round_timer_);
  round_timer_.data = this;
  uv_timer_init(loop_, &sweep_timer_);
  sweep_timer_.data = this;
}

void Hub::SetUnroutableTimeout(int64_t ms) {
  unroutable_timeout_ms_ = ms;
  if (ms > 0 && !closed_) {
    uv_timer_start(&sweep_timer_, OnSweep, 1000, 1000);
  } else {
    uv_timer_stop(&sweep_timer_);
  }
}

void Hub::OnSweep(uv_timer_t* timer) { static_cast<Hub*>(timer->data)->FailUnroutable(); }

// F5: a function some master listed that nobody serves now (no pseudo-worker of any master and
// no network worker registers it): its jobs waiting longer than the timeout end with an error.
void Hub::FailUnroutable() {
  if (closed_ || masters_.empty()) return;
  std::set<std::string, std::less<>> stranded;
  for (const auto& [name, entry] : masters_) {
    for (const std::string& fn : entry.adapter->listed()) {
      const broker::Function* f = broker_.FindFunction(fn);
      if (f == nullptr || f->worker_count() != 0) continue;
      if (f->queued(broker::Priority::kHigh) + f->queued(broker::Priority::kNormal) +
              f->queued(broker::Priority::kLow) ==
          0) {
        continue;
      }
      stranded.insert(fn);
    }
  }
  if (stranded.empty()) return;
  const int64_t now = clock_.MonotonicMs();
  std::vector<std::string> expired;
  for (const broker::Job* job : broker_.JobsInCreationOrder()) {
    if (job->queued_now() && now - job->created_ms() > unroutable_timeout_ms_ &&
        stranded.count(job->function_name()) != 0) {
      expired.emplace_back(job->handle());
    }
  }
  Adapter& any = *masters_.begin()->second.adapter;
  for (const std::string& handle : expired) {
    any.FailQueued(handle, "No Jenkins master can run this job (waited longer than "
                           "--jenkins-unroutable-timeout)");
  }
}

Hub::~Hub() {
  // Close() must have run (the server closes the hub before the loop's last run).
}

Status Hub::Add(MasterSettings settings, bool runtime) {
  if (closed_) return Status::Error("the server is shutting down");
  if (masters_.count(settings.name) != 0) {
    return Status::Error("jenkins master '" + settings.name + "' is already registered");
  }
  for (const auto& [name, entry] : masters_) {
    if (entry.adapter->settings().manager_name == settings.manager_name) {
      return Status::Error("manager name '" + settings.manager_name + "' is already used by " +
                           "jenkins master '" + name + "'");
    }
  }
  for (const auto& adapter : closing_) {
    if (adapter->settings().name == settings.name) {
      return Status::Error("jenkins master '" + settings.name + "' is still being removed");
    }
  }
  const std::string name = settings.name;
  const std::map<std::string, std::string> raw = settings.raw;
  Entry entry;
  entry.runtime = runtime;
  entry.adapter =
      std::make_unique<Adapter>(loop_, broker_, clock_, *this, std::move(settings), store_);
  Adapter& adapter = *entry.adapter;
  masters_.emplace(name, std::move(entry));
  adapter.Start();
  if (auto rows = journal_.find(name); rows != journal_.end()) {
    adapter.Recover(rows->second);
    journal_.erase(rows);
  }
  if (runtime && persist_) persist_(name, &raw);
  return Status::Ok();
}

Status Hub::Remove(std::string_view name) {
  auto it = masters_.find(name);
  if (it == masters_.end() || it->second.removing) {
    return Status::Error("no jenkins master named '" + std::string(name) + "'");
  }
  it->second.removing = true;
  it->second.adapter->SetDraining(true);
  RH_LOG(kNotice, "jenkins master=%s: removing: draining %zu builds in flight", it->first.c_str(),
         it->second.adapter->builds_in_flight());
  if (persist_) persist_(it->first, nullptr);
  Reap();
  return Status::Ok();
}

void Hub::DrainAll() {
  for (auto& [name, entry] : masters_) entry.adapter->SetDraining(true);
}

void Hub::SetJournal(std::vector<storage::JournalRow> rows) {
  for (storage::JournalRow& row : rows) journal_[row.master].push_back(std::move(row));
}

void Hub::ReportUnclaimedJournal() const {
  for (const auto& [master, rows] : journal_) {
    RH_LOG(kWarning, "jenkins master=%s: %zu journal entries for a master that is not registered; kept "
           "until it is", master.c_str(), rows.size());
  }
}

bool Hub::Has(std::string_view name) const {
  auto it = masters_.find(name);
  return it != masters_.end() && !it->second.removing;
}

void Hub::Reap() {
  for (auto it = masters_.begin(); it != masters_.end();) {
    if (it->second.removing && it->second.adapter->builds_in_flight() == 0) {
      Adapter* adapter = it->second.adapter.get();
      closing_.push_back(std::move(it->second.adapter));
      it = masters_.erase(it);
      ++pending_closes_;
      adapter->Close([this, adapter] {
        --pending_closes_;
        RH_LOG(kNotice, "jenkins master=%s: removed", adapter->settings().name.c_str());
        std::erase_if(closing_, [adapter](const auto& a) { return a.get() == adapter; });
        if (closed_ && pending_closes_ == 0 && on_closed_) {
          auto done = std::move(on_closed_);
          done();
        }
      });
    } else {
      ++it;
    }
  }
}

std::vector<MasterSummary> Hub::Summaries() const {
  std::vector<MasterSummary> out;
  for (const auto& [name, entry] : masters_) out.push_back(entry.adapter->Summary());
  return out;
}

std::vector<std::pair<std::string, std::string>> Hub::Describe(std::string_view name) const {
  auto it = masters_.find(name);
  if (it == masters_.end()) return {};
  const Adapter& adapter = *it->second.adapter;
  auto lines = adapter.settings().Describe();
  const MasterSummary s = adapter.Summary();
  lines.emplace_back("state.health", s.health);
  lines.emplace_back("state.last_error", s.last_error.empty() ? "-" : s.last_error);
  lines.emplace_back("state.registered", it->second.runtime ? "runtime" : "static");
  lines.emplace_back("state.removing", it->second.removing ? "true" : "false");
  lines.emplace_back("state.version", s.version.empty() ? "-" : s.version);
  lines.emplace_back("state.quieting_down", s.quieting_down ? "true" : "false");
  lines.emplace_back("state.functions", std::to_string(s.functions));
  lines.emplace_back("state.nodes", std::to_string(s.nodes.size()));
  lines.emplace_back("state.builds", std::to_string(s.builds.size()));
  int reservations = 0, free = 0;
  for (const NodeSummary& n : s.nodes) {
    reservations += n.reservations;
    free += n.free;
  }
  lines.emplace_back("state.executors_total", std::to_string(s.executors.total));
  lines.emplace_back("state.executors_busy", std::to_string(s.executors.busy));
  lines.emplace_back("state.executors_idle", std::to_string(s.executors.idle));
  lines.emplace_back("state.executors_offline", std::to_string(s.executors.offline));
  lines.emplace_back("state.reservations", std::to_string(reservations));
  lines.emplace_back("state.free_executors", std::to_string(free));
  lines.emplace_back("state.requests", std::to_string(s.requests));
  lines.emplace_back("state.request_errors", std::to_string(s.request_errors));
  lines.emplace_back("state.dispatches", std::to_string(s.dispatches));
  lines.emplace_back("state.requeues", std::to_string(s.requeues));
  lines.emplace_back("state.dropped_parameters", std::to_string(s.dropped_parameters));
  return lines;
}

void Hub::Close(std::function<void()> closed) {
  if (closed_) return;
  closed_ = true;
  on_closed_ = std::move(closed);
  ++pending_closes_;
  uv_close(reinterpret_cast<uv_handle_t*>(&sweep_timer_), [](uv_handle_t* h) {
    auto* self = static_cast<Hub*>(h->data);
    if (--self->pending_closes_ == 0 && self->on_closed_) {
      auto done = std::move(self->on_closed_);
      done();
    }
  });
  uv_close(reinterpret_cast<uv_handle_t*>(&round_timer_), [](uv_handle_t* h) {
    auto* self = static_cast<Hub*>(h->data);
    if (--self->pending_closes_ == 0 && self->on_closed_) {
      auto done = std::move(self->on_closed_);
      done();
    }
  });
  ++pending_closes_;
  for (auto& [name, entry] : masters_) entry.removing = true;
  std::vector<Adapter*> adapters;
  for (auto& [name, entry] : masters_) {
    adapters.push_back(entry.adapter.get());
    closing_.push_back(std::move(entry.adapter));
  }
  masters_.clear();
  for (Adapter* adapter : adapters) {
    ++pending_closes_;
    adapter->Close([this] {
      if (--pending_closes_ == 0 && on_closed_) {
        auto done = std::move(on_closed_);
        done();
      }
    });
  }
}

void Hub::RequestRound() {
  if (round_pending_ || closed_) return;
  round_pending_ = true;
  uv_timer_start(&round_timer_, OnRound, 0, 0);
}

void Hub::OnRound(uv_timer_t* timer) {
  auto* self = static_cast<Hub*>(timer->data);
  self->round_pending_ = false;
  self->Round();
}

void Hub::Round() {
  if (closed_) return;
  std::vector<Adapter*> order;
  for (auto& [name, entry] : masters_) order.push_back(entry.adapter.get());
  if (order.empty()) return;
  // Rotate first so equal weights take turns, then a stable sort by descending weight.
  const size_t shift = rotation_++ % order.size();
  std::rotate(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(shift), order.end());
  std::stable_sort(order.begin(), order.end(), [](const Adapter* a, const Adapter* b) {
    return a->settings().weight > b->settings().weight;
  });
  for (Adapter* adapter : order) adapter->Resume();  // J5 before anyone dispatches
  for (Adapter* adapter : order) adapter->Round();
  Reap();
}

}  // namespace roundhouse::jenkins
