#include "tools/loadgen/run.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "tools/loadgen/loop.h"

namespace roundhouse::loadgen {
namespace {

constexpr int64_t kNanos = 1000000000;
constexpr int64_t kTickNanos = 1000000;         // coordinator poll period
constexpr int64_t kQuiesceNanos = 10 * kNanos;  // bound on letting in-flight jobs finish

struct Address {
  sockaddr_storage storage{};
  socklen_t size = 0;
};

Result<Address> Resolve(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0) return Status::Error("cannot resolve " + host + ": " + ::gai_strerror(rc));
  Address address;
  std::memcpy(&address.storage, found->ai_addr, found->ai_addrlen);
  address.size = found->ai_addrlen;
  ::freeaddrinfo(found);
  return address;
}

// Every connection is a descriptor; leave room for epoll instances and the record file.
Status RaiseDescriptorLimit(const Options& options) {
  const rlim_t needed = static_cast<rlim_t>(options.clients) + options.workers +
                        options.idle_connections + 64 + options.threads;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return Status::Error("getrlimit failed");
  if (limit.rlim_cur >= needed) return Status::Ok();
  rlimit raised = limit;
  raised.rlim_cur = std::max(needed, std::min(limit.rlim_max, rlim_t{1} << 20));
  if (raised.rlim_cur > raised.rlim_max) raised.rlim_max = raised.rlim_cur;  // root only
  if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    raised.rlim_cur = limit.rlim_max;
    raised.rlim_max = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) != 0 || raised.rlim_cur < needed) {
      return Status::Error("need " + std::to_string(needed) +
                           " file descriptors; RLIMIT_NOFILE allows " +
                           std::to_string(limit.rlim_max));
    }
  }
  return Status::Ok();
}

// Owns a descriptor (-1 = none).
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd = -1) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  void Reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

void SleepUntil(int64_t deadline_ns) {
  const int64_t now = MonotonicNanos();
  if (deadline_ns > now) std::this_thread::sleep_for(std::chrono::nanoseconds(deadline_ns - now));
}

}  // namespace

Result<RunResult> Run(const Options& options) {
  Result<Address> address = Resolve(options.host, options.port);
  if (!address.ok()) return address.status();
  Status limit = RaiseDescriptorLimit(options);
  if (!limit.ok()) return limit;
  FileDescriptor record;
  if (!options.record_path.empty()) {
    record.Reset(::open(options.record_path.c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644));
    if (record.get() < 0) {
      return Status::Error("--record " + options.record_path + ": " + std::strerror(errno));
    }
  }

  Shared shared;
  shared.target = options.jobs;
  const auto run_id = static_cast<uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count() ^ (int64_t{::getpid()} << 40));
  std::vector<std::unique_ptr<Loop>> loops;
  for (int t = 0; t < options.threads; ++t) {
    loops.push_back(std::make_unique<Loop>(options, address.value().storage, address.value().size,
                                           t, run_id, &shared, record.get()));
  }
  const int64_t start_ns = MonotonicNanos();
  const int64_t hard_deadline = start_ns + static_cast<int64_t>(options.timeout * kNanos);
  std::vector<std::thread> threads;
  for (auto& loop : loops) threads.emplace_back([&loop] { loop->Run(); });

  RunResult result;
  auto progress = [&] { return ProgressCounter(options, &shared).load(std::memory_order_acquire); };

  // Connect and register everything before any client starts.
  while (shared.ready_loops.load(std::memory_order_acquire) < options.threads &&
         !shared.failed.load() && MonotonicNanos() < hard_deadline) {
    SleepUntil(MonotonicNanos() + kTickNanos);
  }
  bool ready = shared.ready_loops.load() == options.threads && !shared.failed.load();
  if (!ready && !shared.failed.load()) result.timed_out = true;

  int64_t measure_start_ns = 0, measure_end_ns = 0, progress_start = 0, progress_end = 0;
  if (ready) {
    const int64_t go_ns = MonotonicNanos();
    shared.go.store(true, std::memory_order_release);
    const bool by_seconds = options.jobs == 0 && options.mode != Mode::kDrain;
    const int64_t planned_start =
        go_ns + (by_seconds ? static_cast<int64_t>(options.warmup * kNanos) : 0);
    bool measuring = false;
    int64_t last_progress_value = -1, last_progress_ns = go_ns;
    for (;;) {
      const int64_t now = MonotonicNanos();
      if (shared.failed.load() || now >= hard_deadline) {
        // Report what was done up to here; the exit status says the run is invalid.
        result.timed_out = !shared.failed.load();
        if (measuring) {
          measure_end_ns = now;
          progress_end = progress();
        }
        break;
      }
      if (!measuring && now >= planned_start) {
        measuring = true;
        // Drain counts from the first connect: jobs may arrive while workers register.
        measure_start_ns = options.mode == Mode::kDrain ? start_ns : now;
        progress_start = options.mode == Mode::kDrain ? 0 : progress();
        shared.measuring.store(true, std::memory_order_release);
      }
      const int64_t reached = shared.target_reached_ns.load(std::memory_order_acquire);
      if (options.jobs > 0 && reached != 0) {
        measure_end_ns = reached;
        progress_end = progress_start + options.jobs;
        break;
      }
      if (options.mode == Mode::kDrain) {
        const int64_t value = progress();
        if (value != last_progress_value) {
          last_progress_value = value;
          last_progress_ns = now;
        }
        if (now - last_progress_ns >= int64_t{options.idle_exit_ms} * 1000000) {
          measure_end_ns = value > 0 ? last_progress_ns : measure_start_ns;
          progress_end = value;
          break;
        }
      } else if (by_seconds && measuring &&
                 now >= measure_start_ns + static_cast<int64_t>(options.seconds * kNanos)) {
        measure_end_ns = now;
        progress_end = progress();
        break;
      }
      int64_t wake = now + kTickNanos;
      if (!measuring) wake = std::min(wake, planned_start);
      if (by_seconds && measuring) {
        wake = std::min(wake, measure_start_ns + static_cast<int64_t>(options.seconds * kNanos));
      }
      SleepUntil(wake);
    }
    shared.measuring.store(false, std::memory_order_release);

    // Let in-flight jobs finish so the server is left clean for the next run.
    shared.quiesce.store(true, std::memory_order_release);
    const bool background_with_workers = options.mode == Mode::kBackground && options.workers > 0;
    const int64_t quiesce_deadline = std::min(MonotonicNanos() + kQuiesceNanos, hard_deadline);
    while (!shared.failed.load() && MonotonicNanos() < quiesce_deadline) {
      const bool clients_idle = shared.in_flight.load() == 0;
      const bool queue_drained =
          !background_with_workers || shared.worker_done.load() >= shared.created.load();
      if (clients_idle && queue_drained) break;
      SleepUntil(MonotonicNanos() + kTickNanos);
    }
  }

  shared.stop.store(true, std::memory_order_release);
  for (auto& thread : threads) thread.join();
  for (const auto& loop : loops) result.stats.Merge(loop->stats());
  result.failed = shared.failed.load();
  result.jobs = std::max<int64_t>(0, progress_end - progress_start);
  result.seconds = measure_end_ns > measure_start_ns
                       ? static_cast<double>(measure_end_ns - measure_start_ns) / kNanos
                       : 0;
  result.unfinished = shared.in_flight.load();
  if (options.mode == Mode::kBackground && options.workers > 0) {
    result.left_queued = std::max<int64_t>(0, shared.created.load() - shared.worker_done.load());
  }
  if (!ready && result.timed_out) {
    result.stats.Error("timed out connecting and registering connections");
  }
  return result;
}

}  // namespace roundhouse::loadgen
