#include "server/server.h"

#ifdef __GLIBC__
#include <malloc.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <utility>

#include "base/log.h"
#include "base/path_problem.h"
#include "storage/sqlite_store.h"

namespace roundhouse::server {
namespace {

uv_handle_t* AsHandle(void* handle) { return static_cast<uv_handle_t*>(handle); }

const char* SignalName(int signum) {
  switch (signum) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "signal";
  }
}

// --max-memory 0: this share of physical memory (1/kDefaultMemoryDivisor).
constexpr uint64_t kDefaultMemoryDivisor = 4;

uint64_t ResolveMemoryBudget(uint64_t configured) {
  if (configured != 0) return configured;
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return uint64_t{1} << 30;  // unknown: 1 GiB
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) / kDefaultMemoryDivisor;
}

// The memory-return check (OnTrimTimer): period, and the smallest peak worth a trim.
constexpr uint64_t kTrimPeriodMs = 2000;
constexpr size_t kTrimMinPeak = 10000;

}  // namespace

Server::Server(const Config& config) : config_(config), access_(config_.acl, clock_) {
  uv_prepare_init(loop_.get(), &prepare_);
  prepare_.data = this;
  uv_idle_init(loop_.get(), &resume_idle_);
  resume_idle_.data = this;
  uv_timer_init(loop_.get(), &timer_);
  timer_.data = this;
  uv_timer_init(loop_.get(), &graceful_timer_);
  graceful_timer_.data = this;
  uv_timer_init(loop_.get(), &trim_timer_);
  trim_timer_.data = this;
  uv_timer_init(loop_.get(), &partial_timer_);
  partial_timer_.data = this;
  memory_budget_ = ResolveMemoryBudget(config_.max_memory);
  for (uv_signal_t& signal : signals_) {
    uv_signal_init(loop_.get(), &signal);
    signal.data = this;
  }
  handles_open_ = true;
  started_ms_ = clock_.MonotonicMs();
  started_unix_ = clock_.UnixSeconds();
}

Server::~Server() {
  // Normally Run() has closed everything. After a failed Start() (or if Run() was never called)
  // close what is open and let the loop finish the close callbacks before members go away.
  for (auto& [conn, owned] : connections_) conn->Close();
  for (auto& listener : listeners_) listener->Close();
  if (status_ != nullptr) status_->Close();
  if (gearman_http_ != nullptr) gearman_http_->Close();
  if (hub_ != nullptr) hub_->Close(nullptr);
  if (store_ != nullptr) store_->Close();
  CloseOwnHandles();
  loop_.Run();
  status_.reset();
  gearman_http_.reset();
  hub_.reset();
  broker_.reset();
  store_.reset();
  loop_.Run();  // the store's own handles
}

Status Server::OpenStore() {
  if (config_.queue_type == QueueType::kNone) return Status::Ok();
  // One server per file: the lock is taken before SQLite touches the file (doc/protocol.md §6.4).
  auto claimed = ClaimQueueFile(config_.sqlite_db, config_.port);
  if (!claimed.ok()) {
    // A missing or unusable directory fails the lock file first; name that part of the path
    // (the default name when none is configured: an empty path is not the problem).
    const std::string path =
        config_.sqlite_db.empty() ? DefaultDatabaseName(config_.port) : config_.sqlite_db;
    const std::string why = DescribePathProblem(path);
    if (why.empty()) return claimed.status();
    return Status::Error("cannot open queue database " + path + " (--libsqlite3-db): " + why);
  }
  queue_file_ = std::move(claimed).value();
  storage::SqliteOptions options;
  options.path = queue_file_.path;
  options.import_table = config_.sqlite_table;
  options.skip_damaged = config_.sqlite_skip_damaged;
  auto opened = storage::SqliteStore::Open(loop_.get(), options);
  if (!opened.ok()) {
    // Name the part of the path that is wrong (a missing directory, say) rather than SQLite's
    // "unable to open database file".
    const std::string why = DescribePathProblem(queue_file_.path);
    return Status::Error("cannot open queue database " + queue_file_.path +
                         " (--libsqlite3-db): " + (why.empty() ? opened.status().message() : why));
  }
  store_ = std::move(opened).value();
  RH_LOG(kInfo, "durable queue: %s", queue_file_.path.c_str());
  return Status::Ok();
}

Status Server::Replay() {
  if (store_ == nullptr) return Status::Ok();
  storage::ReplayOptions options;
  options.first_import_id = static_cast<uint64_t>(clock_.UnixMicros());
  options.handle_prefix = config_.broker.handle_prefix;
  auto replayed = store_->Replay(
      options, [this](storage::JobRecord&& record) { broker_->Restore(std::move(record)); });
  if (!replayed.ok()) {
    return Status::Error("replay of " + queue_file_.path +
                         " failed: " + replayed.status().message());
  }
  const storage::ReplayInfo& info = replayed.value();
  broker_->SetHandleFloor(info.handle_ceiling);
  RH_LOG(kInfo, "replayed %llu durable jobs (%llu imported from table %s)",
         static_cast<unsigned long long>(info.jobs), static_cast<unsigned long long>(info.imported),
         config_.sqlite_table.c_str());
  return Status::Ok();
}

Status Server::StartJenkins() {
  hub_ = std::make_unique<jenkins::Hub>(loop_.get(), *broker_, clock_, store_.get());
  if (store_ != nullptr) {
    auto journal = store_->LoadJournal();
    if (!journal.ok()) {
      return Status::Error("reading the jenkins journal from " + queue_file_.path + ": " +
                           journal.status().message());
    }
    hub_->SetJournal(std::move(journal).value());
  }
  hub_->SetRuntimeTokenDir(config_.jenkins_token_dir);
  for (const JenkinsMasterConfig& master : config_.jenkins) {
    if (master.origin == "command line" && jenkins::HasSecretInClear(master.settings)) {
      RH_LOG(kWarning, "jenkins master=%s: a token or password on the command line is readable by "
             "every local user (ps, /proc/PID/cmdline); use api_token_file or api_token_env "
             "(doc/jenkins.md, Secrets)", master.name.c_str());
    }
    auto settings = jenkins::ParseMasterSettings(master.name, master.settings, master.origin);
    if (!settings.ok()) return settings.status();
    Status s = hub_->Add(std::move(settings).value(), /*runtime=*/false);
    if (!s.ok()) return Status::Error(master.origin + ": " + s.message());
  }
  if (store_ != nullptr) {
    // Masters added with admin `jenkins add` before the last stop. One that no longer validates
    // (e.g. its token file is gone) is reported and skipped, and stays stored.
    auto stored = store_->LoadMasters();
    if (!stored.ok()) {
      return Status::Error("reading jenkins masters from " + queue_file_.path + ": " +
                           stored.status().message());
    }
    for (const auto& [name, text] : stored.value()) {
      if (hub_->Has(name)) {
        RH_LOG(kNotice, "jenkins %s: configured statically; the runtime registration stored in "
               "%s is ignored", name.c_str(), queue_file_.path.c_str());
        continue;
      }
      auto raw = jenkins::DecodeSettings(text);
      Result<jenkins::MasterSettings> settings =
          raw.ok() ? jenkins::ParseMasterSettings(name, raw.value(), "database",
                                                  hub_->runtime_trust())
                   : Result<jenkins::MasterSettings>(raw.status());
      Status s = settings.ok() ? hub_->Add(std::move(settings).value(), /*runtime=*/true)
                               : settings.status();
      if (!s.ok()) {
        RH_LOG(kError, "jenkins %s: stored registration skipped: %s", name.c_str(),
               s.message().c_str());
      }
    }
  }
  hub_->ReportUnclaimedJournal();
  hub_->SetUnroutableTimeout(int64_t{config_.jenkins_unroutable_timeout_s} * 1000);
  hub_->SetPersist([this](const std::string& name, const std::map<std::string, std::string>* raw) {
    if (store_ == nullptr) return;
    if (raw != nullptr) {
      store_->PutMaster(name, jenkins::EncodeSettings(*raw));
    } else {
      store_->DeleteMaster(name);
    }
  });
  SetJenkinsProvider([this] { return hub_->Summaries(); });
  return Status::Ok();
}

Status Server::LoadTls(bool starting) {
  tls::ContextOptions options;
  options.certificate_file = config_.ssl_certificate;
  options.key_file = config_.ssl_key;
  // The option handler accepted only the three names.
  (void)tls::ParseClientCertificates(config_.ssl_verify_client, &options.client_certificates);
  if (options.client_certificates != tls::ClientCertificates::kNone) {
    options.ca_file = config_.ssl_ca_file;
  }
  auto loaded = tls::Context::Load(options);
  if (!loaded.ok()) {
    const std::string why = loaded.status().message();
    if (starting &&
        (config_.ssl_require || !config_.ssl_require_listen.empty() || config_.status_ssl)) {
      return loaded.status();
    }
    if (starting) {
      RH_LOG(kError, "%s; the Gearman port serves plain text only until a SIGHUP loads them",
             why.c_str());
    } else if (tls_ != nullptr) {
      RH_LOG(kError, "SIGHUP: %s; keeping the previous certificate", why.c_str());
    } else {
      RH_LOG(kError, "SIGHUP: %s; still no TLS", why.c_str());
    }
    return Status::Ok();
  }
  tls_ = loaded.value();
  RH_LOG(kNotice, "%s: %s, client certificates %s",
         starting ? "TLS certificate loaded" : "SIGHUP: TLS certificate reloaded",
         tls_->description().c_str(), tls::ClientCertificatesName(tls_->client_certificates()));
  if (status_ != nullptr && config_.status_ssl) status_->SetTls(tls_);
  return Status::Ok();
}

Status Server::Start() {
  Status s = OpenStore();
  if (!s.ok()) return s;
  if (config_.ssl || config_.status_ssl) {
    s = LoadTls(/*starting=*/true);
    if (!s.ok()) return s;
  }
  broker_ = std::make_unique<broker::Broker>(config_.broker, clock_, store_.get(),
                                             [this](int64_t deadline) { Schedule(deadline); });

  ListenOptions listen;
  listen.addresses = config_.listen;
  listen.port = config_.port;
  listen.backlog = config_.backlog;
  listen.keepalive = config_.keepalive;
  listen.accept_errors = &accept_errors_;
  // -L's listeners, then --ssl-require-listen's on the same port (its own addresses accept TLS
  // only). Without -L but with --ssl-require-listen, only the latter are bound.
  if (!config_.listen.empty() || config_.ssl_require_listen.empty()) {
    s = BindListeners(
        loop_.get(), listen,
        [this](Listener& listener) { OnAccept(listener, /*require_tls=*/config_.ssl_require); },
        &listeners_);
    if (!s.ok()) return s;
    listen.port = port();  // port 0: the TLS-only addresses share the port just bound
  }
  if (!config_.ssl_require_listen.empty()) {
    listen.addresses = config_.ssl_require_listen;
    s = BindListeners(
        loop_.get(), listen,
        [this](Listener& listener) { OnAccept(listener, /*require_tls=*/true); }, &listeners_);
    if (!s.ok()) return s;
  }

  if (access_.enabled()) {
    RH_LOG(kNotice, "access control on: %zu identities listed (doc/acl.md)", config_.acl->size());
  }
  Result<std::string> token = LoadStatusToken(config_);
  if (!token.ok()) return token.status();
  if (!token.value().empty() && config_.status_port == 0) {
    RH_LOG(kWarning, "a status API token is configured but the status API is off");
  }
  if (config_.http_protocol) {
    http::GearmanHttpOptions options;
    options.addresses = config_.listen;
    options.port = config_.http_port;
    options.backlog = config_.backlog;
    options.max_connections_per_address = config_.http_max_connections_per_address;
    options.request_timeout_ms =
        uint64_t{1000} * static_cast<uint64_t>(config_.http_request_timeout_s);
    options.write_timeout_ms = options.request_timeout_ms;
    options.max_unique = config_.limits.max_unique;
    options.max_reply_bytes = config_.limits.max_pending_output;
    options.max_output_queue = config_.limits.max_output_queue;
    options.limits.max_body_bytes = config_.limits.max_packet_body;
    options.accept_errors = &accept_errors_;
    gearman_http_ = std::make_unique<http::GearmanHttp>(
        loop_.get(), options, *broker_, access_.enabled() ? &access_ : nullptr, *this);
    s = gearman_http_->Start();
    if (!s.ok()) return s;
  }

  if (config_.status_port != 0) {
    http::StatusServerOptions options;
    options.bearer_token = std::move(token).value();
    options.address = config_.status_listen;
    options.port = config_.status_port;
    options.metrics_max_functions = static_cast<size_t>(config_.metrics_max_functions);
    options.backlog = config_.backlog;
    options.accept_errors = &accept_errors_;
    status_ = std::make_unique<http::StatusServer>(
        loop_.get(), options, clock_, *broker_, [this] { return Info(); }, jenkins_provider_);
    if (config_.status_ssl) status_->SetTls(tls_);
    s = status_->Start();
    if (!s.ok()) return s;
  }

  // Replay after binding, before the loop runs: no connection is accepted before it is done.
  s = Replay();
  if (!s.ok()) return s;
  s = StartJenkins();
  if (!s.ok()) return s;

  uv_prepare_start(&prepare_, OnPrepare);
  uv_timer_start(&trim_timer_, OnTrimTimer, kTrimPeriodMs, kTrimPeriodMs);
  uv_unref(AsHandle(&trim_timer_));
  if (config_.partial_frame_timeout_s > 0) {
    const uint64_t timeout_ms = uint64_t(config_.partial_frame_timeout_s) * 1000;
    const uint64_t period = std::clamp<uint64_t>(timeout_ms / 4, 100, 1000);
    uv_timer_start(&partial_timer_, OnPartialTimer, period, period);
    uv_unref(AsHandle(&partial_timer_));
  }
  RH_LOG(kInfo, "memory budget (--max-memory): %llu bytes",
         static_cast<unsigned long long>(memory_budget_));
  for (size_t i = 0; i < std::size(kSignals); ++i) {
    const int rc = uv_signal_start(&signals_[i], OnSignal, kSignals[i]);
    if (rc != 0) return Status::Error(std::string("uv_signal_start: ") + uv_strerror(rc));
  }
  if (auto deadline = broker_->NextTimerDeadline()) Schedule(*deadline);
  RH_LOG(kNotice, "roundhouse " ROUNDHOUSE_VERSION " ready on port %u",
         static_cast<unsigned>(port()));
  return Status::Ok();
}

int Server::Run() {
  loop_.Run();
  return 0;  // main() logs "shutdown complete" once the Server is destroyed
}

uint16_t Server::port() const {
  for (const auto& listener : listeners_) {
    if (listener->port() != 0) return listener->port();
  }
  return config_.port;
}

void Server::SetJenkinsProvider(http::JenkinsProvider provider) {
  jenkins_provider_ = std::move(provider);
  if (status_ != nullptr) status_->set_jenkins(jenkins_provider_);
}

http::ServerInfo Server::Info() const {
  http::ServerInfo info;
  info.version = ROUNDHOUSE_VERSION;
  info.uptime_ms = clock_.MonotonicMs() - started_ms_;
  info.started_unix = started_unix_;
  info.connections = connections_.size();
  info.memory_budget_bytes = memory_budget_;
  info.job_bytes = broker_->JobBytes();
  info.unsent_output_bytes = unsent_output_;
  info.memory_refusals = memory_refusals_;
  info.output_overflows = output_overflows_;
  info.partial_frame_timeouts = partial_timeouts_;
  info.accept_errors = accept_errors_.count();
  if (store_ != nullptr) {
    info.store_type = "sqlite";
    info.store_path = queue_file_.path;
    info.store = store_->Stats();
  } else {
    info.store_type = "none";
  }
  if (access_.enabled()) {
    for (acl::Kind kind : acl::kAllKinds) {
      info.acl_denials.emplace_back(std::string(acl::KindName(kind)),
                                    access_.denials()[static_cast<size_t>(kind)]);
    }
  }
  return info;
}

// ---- connections

void Server::OnAccept(Listener& listener, bool require_tls) {
  auto owned = std::make_unique<Connection>(*this, loop_.get());
  Connection* conn = owned.get();
  connections_.emplace(conn, std::move(owned));
  if (!listener.AcceptInto(conn->stream())) {
    conn->Close();
    return;
  }
  // --ssl: the peer's first byte decides between TLS and plain text (doc/protocol.md §5.5).
  if (config_.ssl) conn->stream().OfferTls(tls_, require_tls);
  if (!conn->Start(config_.keepalive_idle, config_.keepalive_interval, config_.keepalive_count)) {
    conn->Close();
  }
}

bool Server::RefuseForMemory(size_t bytes) {
  const uint64_t used = broker_->JobBytes() + unsent_output_;
  if (used + bytes <= memory_budget_) return false;
  ++memory_refusals_;
  LogLimited(memory_log_, "memory budget reached (--max-memory " + std::to_string(memory_budget_) +
                              " bytes; jobs " + std::to_string(broker_->JobBytes()) +
                              ", unsent output " + std::to_string(unsent_output_) +
                              "): refusing new submissions with QUEUE_ERROR");
  return true;
}

void Server::OutputOverflowed(const broker::Peer& peer) {
  ++output_overflows_;
  LogLimited(overflow_log_, "fd " + std::to_string(peer.Fd()) + " " + std::string(peer.Address()) +
                                ": output passed --max-output-queue (" +
                                std::to_string(config_.limits.max_output_queue) +
                                " bytes) while the peer did not read; closing it as if it had "
                                "disconnected");
}

void Server::OnPartialTimer(uv_timer_t* handle) {
  auto* server = static_cast<Server*>(handle->data);
  const uint64_t now = uv_now(server->loop_.get());
  const uint64_t timeout_ms = uint64_t(server->config_.partial_frame_timeout_s) * 1000;
  std::vector<Connection*> expired;
  for (auto& [conn, owned] : server->connections_) {
    const uint64_t since = conn->partial_since_ms();
    if (since != 0 && !conn->closing() && now - since >= timeout_ms) expired.push_back(conn);
  }
  for (Connection* conn : expired) {
    ++server->partial_timeouts_;
    server->LogLimited(server->partial_log_,
                       "fd " + std::to_string(conn->Fd()) + " " + std::string(conn->Address()) +
                           ": packet or admin line incomplete after --partial-frame-timeout " +
                           std::to_string(server->config_.partial_frame_timeout_s) + " s; closing");
    conn->Close();
  }
}

void Server::LogLimited(LimitedLog& state, const std::string& message) {
  const uint64_t now = uv_now(loop_.get());
  if (state.ever && now - state.last_ms < 1000) {
    ++state.suppressed;
    return;
  }
  if (state.suppressed > 0) {
    RH_LOG(kWarning, "%s (and %llu more in the last second)", message.c_str(),
           static_cast<unsigned long long>(state.suppressed));
  } else {
    RH_LOG(kWarning, "%s", message.c_str());
  }
  state.ever = true;
  state.last_ms = now;
  state.suppressed = 0;
}

void Server::MarkDirty(Connection& conn) {
  conn.set_dirty(true);
  dirty_.push_back(&conn);
}

void Server::ResumeNextTurn(Connection& conn) {
  if (std::find(resume_.begin(), resume_.end(), &conn) != resume_.end()) return;
  resume_.push_back(&conn);
  uv_idle_start(&resume_idle_, OnResumeIdle);
}

void Server::OnResumeIdle(uv_idle_t* handle) {
  auto* server = static_cast<Server*>(handle->data);
  uv_idle_stop(handle);
  const std::vector<Connection*> due = std::exchange(server->resume_, {});
  for (Connection* conn : due) {
    if (!conn->dirty()) server->MarkDirty(*conn);
  }
}

void Server::Closed(Connection& conn) {
  if (conn.dirty()) dirty_.erase(std::remove(dirty_.begin(), dirty_.end(), &conn), dirty_.end());
  resume_.erase(std::remove(resume_.begin(), resume_.end(), &conn), resume_.end());
  connections_.erase(&conn);
}

void Server::FlushDirty() {
  // Flushing may make more connections dirty (a drained connection handles buffered input, a
  // closing one re-queues jobs and wakes workers); they are appended and flushed in this pass.
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Connection* conn = dirty_[i];
    conn->set_dirty(false);
    conn->Flush();
  }
  dirty_.clear();
}

void Server::OnPrepare(uv_prepare_t* handle) {
  auto* server = static_cast<Server*>(handle->data);
  server->FlushDirty();
  const Pending pending = std::exchange(server->pending_, Pending::kNone);
  if (pending == Pending::kImmediate || (pending == Pending::kGraceful && server->graceful_)) {
    server->Shutdown();
    return;
  }
  if (pending == Pending::kGraceful) server->BeginGracefulShutdown();
  // The cheap check each turn; OnGracefulTick does the full one (queued durable jobs don't hold).
  if (server->graceful_ && !server->shutting_down_ && server->broker_->LiveJobCount() == 0) {
    RH_LOG(kNotice, "graceful shutdown: no jobs left");
    server->Shutdown();
  }
}

// ---- timers

void Server::Schedule(int64_t deadline_ms) {
  if (!handles_open_ || shutting_down_) return;
  if (timer_armed_ && deadline_ms >= timer_deadline_) return;
  // The loop's cached time may lag; refresh it so the timer does not fire before the deadline.
  uv_update_time(loop_.get());
  const int64_t delay = std::max<int64_t>(0, deadline_ms - clock_.MonotonicMs());
  uv_timer_start(&timer_, OnTimer, static_cast<uint64_t>(delay), 0);
  timer_armed_ = true;
  timer_deadline_ = deadline_ms;
}

void Server::OnTimer(uv_timer_t* handle) {
  auto* server = static_cast<Server*>(handle->data);
  server->timer_armed_ = false;
  server->broker_->RunTimers();
  if (auto deadline = server->broker_->NextTimerDeadline()) server->Schedule(*deadline);
}

// ---- signals and shutdown

void Server::OnSignal(uv_signal_t* handle, int signum) {
  auto* server = static_cast<Server*>(handle->data);
  switch (signum) {
    case SIGHUP: {
      Status s = log::Reopen();
      if (!s.ok()) RH_LOG(kError, "SIGHUP: reopening the log failed: %s", s.message().c_str());
      RH_LOG(kNotice, "SIGHUP: log reopened");
      if (server->config_.ssl || server->config_.status_ssl) (void)server->LoadTls(false);
      return;
    }
    case SIGUSR1:
      if (server->graceful_) {
        RH_LOG(kNotice, "SIGUSR1: graceful shutdown already in progress");
        return;
      }
      RH_LOG(kNotice, "SIGUSR1: graceful shutdown");
      server->BeginGracefulShutdown();
      return;
    default:
      RH_LOG(kNotice, "%s: shutting down", SignalName(signum));
      server->Shutdown();
      return;
  }
}

void Server::RequestShutdown(bool graceful) {
  RH_LOG(kNotice, "admin: %s requested", graceful ? "shutdown graceful" : "shutdown");
  if (pending_ == Pending::kImmediate) return;
  pending_ = graceful ? Pending::kGraceful : Pending::kImmediate;
}

void Server::BeginGracefulShutdown() {
  if (graceful_ || shutting_down_) return;
  graceful_ = true;
  for (auto& listener : listeners_) listener->Close();
  if (gearman_http_ != nullptr) gearman_http_->CloseListeners();
  broker_->BeginDrain();
  if (hub_ != nullptr) hub_->DrainAll();
  const int timeout_s = config_.shutdown_timeout_s;
  graceful_deadline_ms_ = timeout_s > 0 ? clock_.MonotonicMs() + int64_t{timeout_s} * 1000 : 0;
  uv_timer_start(&graceful_timer_, OnGracefulTick, kGracefulCheckMs, kGracefulCheckMs);
  RH_LOG(kNotice,
         "graceful shutdown: listeners closed, new submissions refused; waiting for %zu of %zu "
         "jobs (running, foreground or not durable) %s%s",
         broker_->JobsHoldingShutdown(), broker_->LiveJobCount(),
         timeout_s > 0 ? "for at most " : "with no bound",
         timeout_s > 0 ? (std::to_string(timeout_s) + " s").c_str() : "");
}

void Server::OnGracefulTick(uv_timer_t* handle) {
  auto* server = static_cast<Server*>(handle->data);
  if (!server->graceful_ || server->shutting_down_) return;
  const size_t holding = server->broker_->JobsHoldingShutdown();
  if (holding == 0) {
    RH_LOG(kNotice, "graceful shutdown: running and foreground work done; %zu queued durable "
           "jobs stay stored for the next start", server->broker_->LiveJobCount());
    server->Shutdown();
    return;
  }
  if (server->graceful_deadline_ms_ != 0 &&
      server->clock_.MonotonicMs() >= server->graceful_deadline_ms_) {
    RH_LOG(kWarning, "graceful shutdown: --shutdown-timeout (%d s) reached with %zu jobs "
           "unfinished: running durable jobs are put back and replayed at the next start; "
           "foreground clients are disconnected; jobs that are not durable are lost",
           server->config_.shutdown_timeout_s, holding);
    server->Shutdown();
  }
}

void Server::Shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  if (handles_open_) uv_timer_stop(&graceful_timer_);
  broker_->BeginShutdown();
  // Pseudo-workers detach now, so their jobs stay as they were (durable rows kept).
  if (hub_ != nullptr) hub_->Close(nullptr);
  for (auto& listener : listeners_) listener->Close();
  if (status_ != nullptr) status_->Close();
  if (gearman_http_ != nullptr) gearman_http_->Close();
  // Connections are freed in their close callbacks, which erase them from connections_; collect
  // first so iteration does not depend on that.
  std::vector<Connection*> open;
  open.reserve(connections_.size());
  for (auto& [conn, owned] : connections_) open.push_back(conn);
  for (Connection* conn : open) conn->CloseAfterTryWrite();
  dirty_.clear();
  resume_.clear();
  for (Connection* conn : open) conn->set_dirty(false);
  // Every peer is detached, so no new store work can start; commit what is queued.
  if (store_ != nullptr) store_->Close();
  CloseOwnHandles();
}

void Server::OnTrimTimer(uv_timer_t* handle) {
  auto* server = static_cast<Server*>(handle->data);
  const size_t now = server->broker_->LiveJobCount() + server->broker_->FunctionCount();
  // The broker's high-water mark, not a sample taken now: 200k names can come and go within
  // one period, and a sampled peak would never have seen them.
  server->trim_peak_ = std::max(server->trim_peak_, server->broker_->TakeHighWater());
  if (server->trim_peak_ < kTrimMinPeak || now > server->trim_peak_ / 2) return;
#ifdef __GLIBC__
  const int64_t started = server->clock_.MonotonicMs();
  server->broker_->ReleaseCaches();  // scattered reusable blocks would pin the pages they sit in
  malloc_trim(0);
  RH_LOG(kInfo, "jobs and functions fell from %zu to %zu: freed heap returned (%lld ms)",
         server->trim_peak_, now,
         static_cast<long long>(server->clock_.MonotonicMs() - started));
#endif
  server->trim_peak_ = now;
}

void Server::CloseOwnHandles() {
  if (!handles_open_) return;
  handles_open_ = false;
  timer_armed_ = false;
  uv_close(AsHandle(&prepare_), nullptr);
  uv_close(AsHandle(&resume_idle_), nullptr);
  uv_close(AsHandle(&timer_), nullptr);
  uv_close(AsHandle(&graceful_timer_), nullptr);
  uv_close(AsHandle(&trim_timer_), nullptr);
  uv_close(AsHandle(&partial_timer_), nullptr);
  for (uv_signal_t& signal : signals_) uv_close(AsHandle(&signal), nullptr);
}

}  // namespace roundhouse::server
