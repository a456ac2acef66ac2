#include "tools/loadgen/loop.h"

#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "protocol/codec.h"
#include "tools/loadgen/worker.h"

namespace roundhouse::loadgen {
namespace {

constexpr int kMaxEvents = 1024;
// Turns without events end after this long so the loop sees flags and its clients' backlog.
constexpr int kIdleTurnMs = 1;

// How many of `total` items the loop `thread` of `threads` takes (round-robin split).
int ShareOf(int total, int thread, int threads) {
  return total / threads + (thread < total % threads ? 1 : 0);
}

}  // namespace

int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::atomic<int64_t>& ProgressCounter(const Options& options, Shared* shared) {
  switch (options.mode) {
    case Mode::kBackground:
      return options.workers > 0 ? shared->worker_done : shared->created;
    case Mode::kSubmitOnly:
      return shared->created;
    case Mode::kForeground:
    case Mode::kLatency:
      return shared->client_done;
    case Mode::kDrain:
      return shared->worker_done;
  }
  return shared->created;
}

Loop::Loop(const Options& options, const sockaddr_storage& address, socklen_t address_size,
           int thread, uint64_t run_id, Shared* shared, int record_fd)
    : options_(options),
      address_(address),
      address_size_(address_size),
      shared_(shared),
      background_with_workers_(options.mode == Mode::kBackground && options.workers > 0) {
  const int threads = options.threads;
  const Worker::Role role =
      options.mode == Mode::kDrain ? Worker::Role::kDrain : Worker::Role::kWorker;
  for (int i = 0; i < ShareOf(options.workers, thread, threads); ++i) {
    peers_.push_back(std::make_unique<Worker>(options, role));
  }
  for (int i = 0; i < ShareOf(options.idle_connections, thread, threads); ++i) {
    peers_.push_back(std::make_unique<Worker>(options, Worker::Role::kIdle));
  }
  // Client c (global index) runs in loop c % threads. --jobs is split evenly over the clients
  // and each submits exactly its share (in bg mode with workers the run then ends when the
  // workers have completed them all).
  for (int c = thread; c < options.clients; c += threads) {
    const int64_t quota =
        options.jobs > 0 ? options.jobs / options.clients + (c < options.jobs % options.clients)
                         : 0;
    auto client = std::make_unique<Client>(options, c, run_id, quota);
    clients_.push_back(client.get());
    peers_.push_back(std::move(client));
  }
  if (record_fd >= 0) record_.emplace(record_fd);
  if (options.tls) {
    tls_ = SSL_CTX_new(TLS_client_method());
    if (tls_ != nullptr) {
      SSL_CTX_set_min_proto_version(tls_, TLS1_2_VERSION);
      // Read-ahead: one read() takes every record the socket holds, as the plain path's one
      // read() per readiness does (without it OpenSSL reads each record's header and body
      // separately, three syscalls per record with the final EAGAIN: the generator's own cost,
      // on the cores the server shares, would count against the server's TLS rate).
      SSL_CTX_set_read_ahead(tls_, 1);
      if (!options.tls_ca.empty()) {
        SSL_CTX_load_verify_locations(tls_, options.tls_ca.c_str(), nullptr);
        SSL_CTX_set_verify(tls_, SSL_VERIFY_PEER, nullptr);
      }
    }
  }
}

Loop::~Loop() {
  peers_.clear();  // closes the sockets (and frees their TLS sessions) before the context
  SSL_CTX_free(tls_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void Loop::Run() {
  Context ctx;
  ctx.stats = &stats_;
  ctx.record = record_ ? &*record_ : nullptr;
  ctx.now_ns = MonotonicNanos();
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    Fail(nullptr, std::string("epoll_create1: ") + std::strerror(errno));
    return;
  }
  StartConnects();
  bool ready_published = false;
  epoll_event events[kMaxEvents];
  while (!shared_->stop.load(std::memory_order_acquire)) {
    const int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, kIdleTurnMs);
    if (n < 0 && errno != EINTR) {
      Fail(nullptr, std::string("epoll_wait: ") + std::strerror(errno));
      break;
    }
    ctx.now_ns = MonotonicNanos();
    ctx.measuring = shared_->measuring.load(std::memory_order_relaxed);
    ctx.may_submit = shared_->go.load(std::memory_order_acquire) &&
                     !shared_->quiesce.load(std::memory_order_relaxed) && BacklogAllows();
    for (int i = 0; i < n; ++i) {
      OnEvent(static_cast<Peer*>(events[i].data.ptr), events[i].events, ctx);
    }
    if (!ready_published && AllReady()) {
      ready_published = true;
      shared_->ready_loops.fetch_add(1, std::memory_order_release);
    }
    if (ctx.may_submit) {
      for (Client* client : clients_) {
        client->Pump(ctx);
        MarkDirty(client);
      }
    }
    FlushDirty();
    if (record_) {
      Status s = record_->Flush();
      if (!s.ok()) Fail(nullptr, s.message());
    }
    Publish(ctx);
  }
  Publish(ctx);
}

bool Loop::AllReady() const {
  // Every peer holds an opening slot from its connect until it is ready.
  return next_connect_ == peers_.size() && opening_ == 0;
}

bool Loop::BacklogAllows() const {
  if (!background_with_workers_ || options_.backlog == 0) return true;
  // Acknowledged or still unanswered, and not yet completed (refused submits do not count).
  const int64_t pending = shared_->created.load(std::memory_order_relaxed) +
                          shared_->in_flight.load(std::memory_order_relaxed) -
                          shared_->worker_done.load(std::memory_order_relaxed);
  return pending < options_.backlog;
}

void Loop::StartConnects() {
  while (opening_ < options_.connect_concurrency && next_connect_ < peers_.size()) {
    Peer* peer = peers_[next_connect_++].get();
    if (peer->conn().StartConnect(address_, address_size_) != IoResult::kOk) {
      Fail(peer, std::string("connect: ") + std::strerror(errno));
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.ptr = peer;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, peer->conn().fd(), &ev) != 0) {
      Fail(peer, std::string("epoll_ctl: ") + std::strerror(errno));
      return;
    }
    peer->connecting = true;
    peer->opening = true;
    ++opening_;
  }
}

void Loop::NoteIfReady(Peer* peer) {
  if (!peer->opening || !peer->ready()) return;
  peer->opening = false;
  --opening_;
  StartConnects();
}

void Loop::OnEvent(Peer* peer, uint32_t events, Context& ctx) {
  if (peer->dead) return;
  if (peer->connecting) {
    OnConnected(peer, ctx);
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ReadAndDispatch(peer, ctx);
  if (!peer->dead && (events & EPOLLOUT) && peer->want_write) Flush(peer);
}

void Loop::OnConnected(Peer* peer, Context& ctx) {
  peer->connecting = false;
  if (peer->conn().FinishConnect() != IoResult::kOk) {
    Fail(peer, std::string("connect: ") + std::strerror(errno));
    return;
  }
  if (options_.tls) {
    constexpr int kHandshakeTimeoutMs = 10000;
    std::string error = "no TLS context";
    if (tls_ == nullptr ||
        peer->conn().StartTls(tls_, kHandshakeTimeoutMs, &error) != IoResult::kOk) {
      Fail(peer, error);
      return;
    }
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = peer;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, peer->conn().fd(), &ev) != 0) {
    Fail(peer, std::string("epoll_ctl: ") + std::strerror(errno));
    return;
  }
  peer->OnConnected(ctx);
  MarkDirty(peer);
  NoteIfReady(peer);
}

void Loop::ReadAndDispatch(Peer* peer, Context& ctx) {
  Connection& conn = peer->conn();
  switch (conn.Read()) {
    case IoResult::kOk:
      break;
    case IoResult::kWouldBlock:
      return;
    case IoResult::kClosed:
      Fail(peer, "server closed a connection");
      return;
    case IoResult::kError:
      Fail(peer, std::string("read: ") + std::strerror(errno));
      return;
  }
  static const protocol::Limits kLimits;
  protocol::Frame frame;
  size_t consumed = 0;
  for (;;) {
    const protocol::ParseResult result =
        protocol::ParseFrame(conn.input(), kLimits, &consumed, &frame);
    if (result == protocol::ParseResult::kNeedMore) break;
    if (result == protocol::ParseResult::kError) {
      Fail(peer, std::string("unparseable input from server: ") + frame.error);
      return;
    }
    if (frame.kind != protocol::FrameKind::kPacket ||
        frame.packet.magic != protocol::Magic::kResponse) {
      const char* what = frame.kind == protocol::FrameKind::kText        ? "a text line"
                         : frame.kind == protocol::FrameKind::kOversized ? "an oversized packet"
                         : frame.kind == protocol::FrameKind::kMissingArguments
                             ? "a packet with missing arguments"
                             : "a packet with request magic";
      Fail(peer, std::string("server sent ") + what + " (" +
                     std::string(protocol::Name(frame.packet.type)) + ")");
      return;
    }
    peer->OnPacket(frame.packet, ctx);
    conn.Consume(consumed);
  }
  MarkDirty(peer);
  NoteIfReady(peer);
}

void Loop::MarkDirty(Peer* peer) {
  if (!peer->dirty && !peer->dead && peer->conn().has_output()) {
    peer->dirty = true;
    dirty_.push_back(peer);
  }
}

void Loop::FlushDirty() {
  for (Peer* peer : dirty_) {
    peer->dirty = false;
    if (!peer->dead) Flush(peer);
  }
  dirty_.clear();
}

void Loop::Flush(Peer* peer) {
  switch (peer->conn().Flush()) {
    case IoResult::kOk:
      if (peer->want_write) SetWantWrite(peer, false);
      return;
    case IoResult::kWouldBlock:
      if (!peer->want_write) SetWantWrite(peer, true);
      return;
    case IoResult::kClosed:
    case IoResult::kError:
      Fail(peer, std::string("send: ") + std::strerror(errno));
      return;
  }
}

void Loop::SetWantWrite(Peer* peer, bool want) {
  epoll_event ev{};
  ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
  ev.data.ptr = peer;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, peer->conn().fd(), &ev) != 0) {
    Fail(peer, std::string("epoll_ctl: ") + std::strerror(errno));
    return;
  }
  peer->want_write = want;
}

void Loop::Fail(Peer* peer, std::string what) {
  // After stop, connections closing is expected (the server may be shut down first).
  if (shared_->stop.load(std::memory_order_relaxed)) return;
  stats_.Error(std::move(what));
  if (peer != nullptr && !peer->dead) {
    peer->dead = true;
    if (peer->conn().fd() >= 0) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, peer->conn().fd(), nullptr);
  }
  shared_->failed.store(true, std::memory_order_relaxed);
  shared_->stop.store(true, std::memory_order_release);
}

void Loop::Publish(const Context& ctx) {
  int64_t in_flight = 0;
  for (const Client* client : clients_) in_flight += client->in_flight();
  std::atomic<int64_t>* progress = &ProgressCounter(options_, shared_);
  auto add = [&](std::atomic<int64_t>& total, int64_t now, int64_t* published) {
    if (now == *published) return;
    const int64_t delta = now - *published;
    const int64_t before = total.fetch_add(delta, std::memory_order_acq_rel);
    *published = now;
    if (&total == progress && shared_->target > 0 && before < shared_->target &&
        before + delta >= shared_->target) {
      int64_t unset = 0;
      shared_->target_reached_ns.compare_exchange_strong(unset, ctx.now_ns,
                                                         std::memory_order_acq_rel);
    }
  };
  add(shared_->submitted, stats_.submitted, &published_submitted_);
  add(shared_->in_flight, in_flight, &published_in_flight_);
  add(shared_->created, stats_.created, &published_created_);
  add(shared_->client_done, stats_.client_done, &published_client_done_);
  add(shared_->worker_done, stats_.worker_done, &published_worker_done_);
}

}  // namespace roundhouse::loadgen
