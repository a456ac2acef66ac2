// The server: wires the event loop, the durable store, the broker, the listeners, the
// connections, the broker's timer and the signals together (doc/protocol.md §5, §6).
//
// Start-up order (Start()): open the store, bind the listeners, replay the durable jobs into the
// broker. Connections are accepted only once Run() starts the loop, so replay always completes
// first. The caller daemonizes before constructing the Server (no threads may exist at fork),
// and writes the pid file / drops privileges / releases the daemon parent between Start() and
// Run().
//
// Output of every connection is flushed once per loop turn, just before the loop polls (a
// uv_prepare handle), so replies produced by one read — or by one store commit, or one timer —
// leave in one write per connection.
//
// Shutdown: SIGTERM/SIGINT or admin `shutdown` close everything at once; SIGUSR1 or
// `shutdown graceful` drain (doc/gearman-differences.md, "shutdown graceful"): the listeners
// close, every new submission is refused, Jenkins masters take no new build, and the server
// exits once no job is running, awaiting its first durable write, waited for by a foreground
// client, or not durable — queued durable jobs stay in the store for the next start — or when
// --shutdown-timeout expires, whichever comes first (then as the immediate shutdown: running
// jobs are put back as they were). A second request of either kind during a graceful shutdown
// forces the immediate one. Run() returns after every handle is closed and the loop has nothing
// left to do.
//
// Thread-safety: loop thread only.
#pragma once

#include <uv.h>

#include <csignal>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "jenkins/hub.h"
#include "server/access.h"
#include "server/broker/broker.h"
#include "server/config.h"
#include "server/connection.h"
#include "server/event_loop.h"
#include "server/http/gearman_http.h"
#include "server/http/status_server.h"
#include "server/listener.h"
#include "server/queue_file.h"
#include "server/tls/tls_context.h"
#include "storage/job_store.h"

namespace roundhouse::server {

class Server final : public ConnectionHost {
 public:
  explicit Server(const Config& config);
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the store, binds the listeners and replays durable jobs. On failure the server must
  // not be Run(); destroying it releases what was opened.
  Status Start();

  // Serves until shut down. Returns the process exit code.
  int Run();

  // The port of the first listener (useful with --port 0).
  uint16_t port() const;

  // Where the status endpoint (--status-port) gets the Jenkins masters' summaries from; empty =
  // no Jenkins. Call before or after Start(): the endpoint reads it on every request.
  void SetJenkinsProvider(http::JenkinsProvider provider);

  // ---- ConnectionHost
  broker::Broker& broker() override { return *broker_; }
  const protocol::Limits& limits() const override { return config_.limits; }
  void MarkDirty(Connection& conn) override;
  void ResumeNextTurn(Connection& conn) override;
  void Closed(Connection& conn) override;
  void RequestShutdown(bool graceful) override;
  jenkins::Hub* jenkins_hub() override { return hub_.get(); }
  AccessControl* access() override { return &access_; }
  // ---- MemoryBudget (the Gearman connections and the HTTP protocol port's)
  bool RefuseForMemory(size_t bytes) override;
  size_t* unsent_output_total() override { return &unsent_output_; }
  void OutputOverflowed(const broker::Peer& peer) override;

 private:
  enum class Pending { kNone, kGraceful, kImmediate };

  static void OnPrepare(uv_prepare_t* handle);
  // Active only while resume_ is non-empty: the loop polls without blocking, and the idle
  // callback (next turn, before OnPrepare) marks those connections dirty.
  static void OnResumeIdle(uv_idle_t* handle);
  static void OnTimer(uv_timer_t* handle);
  // Memory return (broker part of issue 12): every kTrimPeriodMs, if the broker's jobs plus
  // functions fell below half of their peak since the last trim (the broker's high-water mark,
  // kept at each insertion; and that peak was large),
  // hands the freed heap back to the system (malloc_trim), so 200k names whose jobs are gone
  // do not keep their RSS. One check is two size() calls; a trim costs about the freed size.
  static void OnTrimTimer(uv_timer_t* handle);
  static void OnSignal(uv_signal_t* handle, int signum);
  // Every kGracefulCheckMs during a graceful shutdown: exits when nothing holds it, or at the
  // --shutdown-timeout deadline.
  static void OnGracefulTick(uv_timer_t* handle);
  // Every partial_check_ms_ (with --partial-frame-timeout): closes connections whose started
  // packet or admin line is older than the timeout. O(connections) per tick, nothing per packet.
  static void OnPartialTimer(uv_timer_t* handle);

  // One kind of event logged at most once a second, with the number left out since.
  struct LimitedLog {
    uint64_t last_ms = 0;
    uint64_t suppressed = 0;
    bool ever = false;
  };
  void LogLimited(LimitedLog& state, const std::string& message);

  // --ssl / --status-ssl: loads the certificate, key and CA file into tls_ (doc/protocol.md §5.5).
  // At start a failure is fatal with --ssl-require or --status-ssl; otherwise it is logged and the
  // Gearman port serves plain text only. On SIGHUP (`starting` false) a failure keeps the
  // previous context; established sessions keep theirs either way.
  Status LoadTls(bool starting);
  Status OpenStore();
  Status Replay();
  // Registers the configured masters and those added at runtime earlier (stored).
  Status StartJenkins();
  // `require_tls`: with --ssl, the listener refuses plain-text peers (--ssl-require, or one of
  // --ssl-require-listen's addresses).
  void OnAccept(Listener& listener, bool require_tls);
  void FlushDirty();
  // The broker asked for RunTimers() at monotonic `deadline_ms`.
  void Schedule(int64_t deadline_ms);
  void BeginGracefulShutdown();
  void Shutdown();
  // Closes the server's own handles; the rest of the close callbacks run as the loop winds down.
  void CloseOwnHandles();
  // The status endpoint's view of the server (uptime, connections, store).
  http::ServerInfo Info() const;

  const Config config_;
  // The queue database and its lock; destroyed after the store below has closed the file.
  QueueFile queue_file_;
  // Declared first: destroyed last, after every handle owner below.
  EventLoop loop_;
  SystemClock clock_;
  // The ACL's enforcement and denial counters (off without [acl] sections); uses clock_.
  AccessControl access_;
  // The store outlives the broker, which holds a raw pointer to it.
  std::unique_ptr<storage::JobStore> store_;
  std::unique_ptr<broker::Broker> broker_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  // The TLS context new handshakes use; null without --ssl / --status-ssl or while the files could
  // not be loaded. Replaced (never modified) on SIGHUP: sessions hold their own reference.
  std::shared_ptr<const tls::Context> tls_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  // --status-port; null when off. Reads the broker, so it is closed before the broker goes.
  std::unique_ptr<http::StatusServer> status_;
  // -r http on --http-port; null when off. Its connections are broker peers: closed (detached)
  // before the broker goes.
  std::unique_ptr<http::GearmanHttp> gearman_http_;
  // Jenkins masters: declared after the broker so they are destroyed before it (their
  // pseudo-workers are attached to it).
  std::unique_ptr<jenkins::Hub> hub_;
  http::JenkinsProvider jenkins_provider_;
  int64_t started_ms_ = 0;    // monotonic, at construction
  int64_t started_unix_ = 0;  // seconds
  // Connections with output to flush before the loop polls (Connection::dirty() set).
  std::vector<Connection*> dirty_;
  // Connections streaming a reply whose next slice is due in the next loop turn.
  std::vector<Connection*> resume_;
  // --max-memory (resolved at construction) and the output part it covers: every Gearman
  // connection's and HTTP protocol connection's unsent bytes are added here
  // (net::Stream::set_queued_total).
  uint64_t memory_budget_ = 0;
  size_t unsent_output_ = 0;
  // What the limits did (ServerInfo, /metrics), and their rate-limited log lines.
  uint64_t memory_refusals_ = 0, output_overflows_ = 0, partial_timeouts_ = 0;
  LimitedLog memory_log_, overflow_log_, partial_log_;
  // accept() failures of every listener: the Gearman port's, --http-port's and --status-port's.
  AcceptErrors accept_errors_;

  uv_prepare_t prepare_{};
  uv_idle_t resume_idle_{};
  uv_timer_t timer_{};
  uv_timer_t graceful_timer_{};  // runs only while graceful_ && !shutting_down_
  static constexpr uint64_t kGracefulCheckMs = 100;
  int64_t graceful_deadline_ms_ = 0;  // monotonic; 0 = no bound (--shutdown-timeout 0)
  uv_timer_t partial_timer_{};
  uv_timer_t trim_timer_{};
  size_t trim_peak_ = 0;  // max of LiveJobCount() + FunctionCount() since the last trim
  static constexpr int kSignals[] = {SIGTERM, SIGINT, SIGUSR1, SIGHUP};
  uv_signal_t signals_[std::size(kSignals)]{};

  bool timer_armed_ = false;
  int64_t timer_deadline_ = 0;        // monotonic ms the timer is armed for
  bool handles_open_ = false;         // prepare_, timer_, signals_ initialised and not yet closed
  bool graceful_ = false;             // graceful shutdown in progress: listeners closed
  bool shutting_down_ = false;        // immediate shutdown done: everything is closing
  Pending pending_ = Pending::kNone;  // admin request, acted on after the next flush
};

}  // namespace roundhouse::server
