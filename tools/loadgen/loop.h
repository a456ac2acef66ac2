// One event-loop thread (epoll, level-triggered) that owns a share of the connections: it
// connects them, reads and parses everything they receive, lets each Peer react, and flushes
// every connection's output once per turn. Several Loops run side by side with --threads; they
// share nothing but the atomics in Shared.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tools/loadgen/client.h"
#include "tools/loadgen/options.h"
#include "tools/loadgen/peer.h"
#include "tools/loadgen/record_file.h"
#include "tools/loadgen/stats.h"

namespace roundhouse::loadgen {

// The coordinator (Run) and the loops meet here. Flags are written by the coordinator and read
// by loops, except `failed` and `stop`, which a loop also sets when it loses a connection.
// Counters are sums the loops publish once per turn (relaxed: they are statistics, and each
// flag that orders phases is read before acting).
struct Shared {
  std::atomic<int> ready_loops{0};     // loops whose connections are all up and registered
  std::atomic<bool> go{false};         // clients may start
  std::atomic<bool> measuring{false};  // record latency samples
  std::atomic<bool> quiesce{false};    // clients stop starting jobs; in-flight ones finish
  std::atomic<bool> stop{false};       // loops return
  std::atomic<bool> failed{false};     // a loop lost a connection or could not connect

  std::atomic<int64_t> submitted{0};
  std::atomic<int64_t> created{0};
  std::atomic<int64_t> client_done{0};
  std::atomic<int64_t> worker_done{0};
  std::atomic<int64_t> in_flight{0};
  // --jobs: the ProgressCounter value that ends the run, and when a loop pushed it there.
  int64_t target = 0;
  std::atomic<int64_t> target_reached_ns{0};
};

// The published counter that measures progress in this mode: jobs completed by the workers
// (bg with workers, drain), JOB_CREATED received (bg without workers, submit-only), or
// WORK_COMPLETE received by clients (fg, latency).
std::atomic<int64_t>& ProgressCounter(const Options& options, Shared* shared);

int64_t MonotonicNanos();

class Loop {
 public:
  // Creates (but does not connect) this loop's share of the connections: index `thread` of
  // `options.threads`. `record_fd` is -1 or a descriptor borrowed for the loop's lifetime.
  Loop(const Options& options, const sockaddr_storage& address, socklen_t address_size, int thread,
       uint64_t run_id, Shared* shared, int record_fd);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // The thread body: runs until shared->stop. Never throws.
  void Run();

  // Valid after Run returned.
  const Stats& stats() const { return stats_; }

 private:
  void StartConnects();
  void OnEvent(Peer* peer, uint32_t events, Context& ctx);
  void OnConnected(Peer* peer, Context& ctx);
  void ReadAndDispatch(Peer* peer, Context& ctx);
  // Frees the peer's opening slot once it is ready and starts the next connects.
  void NoteIfReady(Peer* peer);
  void MarkDirty(Peer* peer);
  void FlushDirty();
  void Flush(Peer* peer);
  void SetWantWrite(Peer* peer, bool want);
  void Fail(Peer* peer, std::string what);
  bool AllReady() const;
  bool BacklogAllows() const;
  void Publish(const Context& ctx);

  const Options& options_;
  const sockaddr_storage address_;
  const socklen_t address_size_;
  Shared* const shared_;
  const bool background_with_workers_;
  int epoll_fd_ = -1;
  SSL_CTX* tls_ = nullptr;  // owned; --tls only
  // Workers first, then idle connections, then clients: that is also the connect order.
  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<Client*> clients_;  // borrowed from peers_
  size_t next_connect_ = 0;       // peers_[next_connect_..] have not started connecting
  // Peers that started connecting and are not ready yet (for a worker: its first GRAB not yet
  // answered). Bounded by --connect-concurrency so the server's accept queue never overflows:
  // a handshake the kernel completed is not yet accepted, and an overflowing queue drops
  // handshakes into exponential back-off (seconds per connection).
  int opening_ = 0;
  std::vector<Peer*> dirty_;  // peers with output to flush this turn
  std::optional<RecordFile> record_;
  Stats stats_;
  // Counter values already added to Shared.
  int64_t published_submitted_ = 0, published_created_ = 0, published_client_done_ = 0,
          published_worker_done_ = 0, published_in_flight_ = 0;
};

}  // namespace roundhouse::loadgen
