#include "server/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "base/log.h"
#include "server/net/stream.h"

namespace roundhouse::server {
namespace {

// One address to bind, from getaddrinfo.
struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  // Binding it may fail harmlessly (an address family the host lacks, e.g. ::1 without IPv6)
  // when it was not named explicitly.
  bool optional = false;
};

std::string EndpointName(const sockaddr* sa) {
  char host[INET6_ADDRSTRLEN] = {0};
  uint16_t port = 0;
  if (sa->sa_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    uv_ip6_name(sin6, host, sizeof(host));
    port = ntohs(sin6->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
  uv_ip4_name(sin, host, sizeof(host));
  port = ntohs(sin->sin_port);
  return std::string(host) + ":" + std::to_string(port);
}

void SetPort(sockaddr* sa, uint16_t port) {
  if (sa->sa_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(sa)->sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in*>(sa)->sin_port = htons(port);
  }
}

bool SameEndpoint(const Endpoint& a, const Endpoint& b) {
  return a.len == b.len && std::memcmp(&a.addr, &b.addr, a.len) == 0;
}

Status Resolve(const char* host, uint16_t port, bool optional, std::vector<Endpoint>* out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host, service.c_str(), &hints, &result);
  if (rc != 0) {
    return Status::Error("cannot resolve listen address " + std::string(host ? host : "*") + ": " +
                         gai_strerror(rc));
  }
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    Endpoint ep;
    std::memcpy(&ep.addr, ai->ai_addr, ai->ai_addrlen);
    ep.len = ai->ai_addrlen;
    ep.optional = optional;
    bool duplicate = false;
    for (const Endpoint& seen : *out) duplicate = duplicate || SameEndpoint(seen, ep);
    if (!duplicate) out->push_back(ep);
  }
  freeaddrinfo(result);
  return Status::Ok();
}

void SetOption(int fd, int level, int name) {
  const int on = 1;
  if (setsockopt(fd, level, name, &on, sizeof(on)) != 0) {
    RH_LOG(kWarning, "setsockopt(%d, %d) on listener: %s", level, name, std::strerror(errno));
  }
}

// bind() with gearmand's EADDRINUSE retry: waits of retry*retry/3+1 seconds until about
// `retry_seconds` have passed. Returns 0 or the errno of the last attempt.
int BindWithRetry(int fd, const sockaddr* sa, socklen_t len, const std::string& name,
                  int retry_seconds) {
  int waited = 0;
  for (int retry = 1;; ++retry) {
    if (bind(fd, sa, len) == 0) return 0;
    const int err = errno;
    if (err != EADDRINUSE || waited >= retry_seconds) return err;
    const int wait = retry * retry / 3 + 1;
    // Logged at once: a test harness looks for "already in use" to pick another port.
    RH_LOG(kError, "bind(%s) failed: %s (EADDRINUSE), retrying in %d s", name.c_str(),
           std::strerror(err), wait);
    sleep(static_cast<unsigned>(wait));
    waited += wait;
  }
}

}  // namespace

void AcceptErrors::Report(const Listener& listener, int status, uint64_t now_ms) {
  ++count_;
  if (logged_ && now_ms - last_log_ms_ < 1000) {
    ++suppressed_;
    return;
  }
  // EMFILE / ENFILE: the listener has accepted and closed the waiting connection (its spare
  // descriptor), so it keeps working; the operator must hear of it.
  const bool descriptors = status == UV_EMFILE || status == UV_ENFILE;
  const char* advice =
      descriptors ? " (connection dropped; raise the file descriptor limit, -f)" : "";
  if (suppressed_ > 0) {
    RH_LOG(kWarning, "accept on %s failed: %s%s (and %llu more in the last second)",
           listener.name().c_str(), uv_strerror(status), advice,
           static_cast<unsigned long long>(suppressed_));
  } else {
    RH_LOG(kWarning, "accept on %s failed: %s%s", listener.name().c_str(), uv_strerror(status),
           advice);
  }
  logged_ = true;
  last_log_ms_ = now_ms;
  suppressed_ = 0;
}

Listener::Listener(uv_loop_t* loop, AcceptCallback on_connection, AcceptErrors* errors)
    : loop_(loop),
      on_connection_(std::move(on_connection)),
      errors_(errors != nullptr ? errors : &own_errors_) {
  poll_.data = this;
  initialized_ = true;
}

bool Listener::AcceptInto(net::Stream& stream) {
  const int fd = std::exchange(pending_fd_, -1);
  if (fd < 0) return false;
  const int rc = stream.Open(fd);
  if (rc == 0) return true;
  close(fd);
  ReportError(rc);
  return false;
}

void Listener::ReportError(int status) { errors_->Report(*this, status, uv_now(loop_)); }

Listener::~Listener() {
  // The owner keeps listeners until the loop has run the close callbacks.
  assert(close_done_);
}

void Listener::Close() {
  if (closed_) return;
  closed_ = true;
  if (close_done_) {  // the poll handle was never opened: nothing to wait for
    if (fd_ >= 0) close(fd_);
    if (spare_fd_ >= 0) close(spare_fd_);
    fd_ = spare_fd_ = -1;
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), OnClose);
}

void Listener::OnReadable(uv_poll_t* poll, int status, int events) {
  (void)events;
  auto* self = static_cast<Listener*>(poll->data);
  if (status < 0) {
    if (!self->closed_) self->ReportError(status);
    return;
  }
  for (int i = 0; i < kMaxAcceptsPerWake && !self->closed_; ++i) {
    const int fd = accept4(self->fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      self->pending_fd_ = fd;
      self->on_connection_(*self);
      if (self->pending_fd_ >= 0) close(std::exchange(self->pending_fd_, -1));
      continue;
    }
    const int err = errno;
    if (err == EINTR || err == ECONNABORTED) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (err == EMFILE || err == ENFILE) {
      self->Shed();
      self->ReportError(-err);
      continue;
    }
    // ENOBUFS, ENOMEM, ...: report once per wake; the poll tries again on the next turn.
    self->ReportError(-err);
    return;
  }
}

void Listener::Shed() {
  if (spare_fd_ >= 0) {
    close(spare_fd_);
    spare_fd_ = -1;
  }
  const int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) close(fd);
  spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void Listener::OnClose(uv_handle_t* handle) {
  auto* self = static_cast<Listener*>(handle->data);
  if (self->fd_ >= 0) close(self->fd_);
  if (self->spare_fd_ >= 0) close(self->spare_fd_);
  self->fd_ = self->spare_fd_ = -1;
  self->close_done_ = true;
}

Status Listener::Listen(const sockaddr* sa, int backlog, bool keepalive, int retry_seconds,
                        int* error_number) {
  *error_number = 0;
  const socklen_t len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  name_ = EndpointName(sa);
  const int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error_number = errno;
    return Status::Error("socket(" + name_ + "): " + std::strerror(errno));
  }
  SetOption(fd, SOL_SOCKET, SO_REUSEADDR);
  if (sa->sa_family == AF_INET6) SetOption(fd, IPPROTO_IPV6, IPV6_V6ONLY);
  SetOption(fd, IPPROTO_TCP, TCP_NODELAY);
  if (keepalive) SetOption(fd, SOL_SOCKET, SO_KEEPALIVE);
  const int err = BindWithRetry(fd, sa, len, name_, retry_seconds);
  if (err != 0) {
    close(fd);
    *error_number = err;
    std::string message = "bind(" + name_ + "): " + std::strerror(err);
    if (err == EADDRINUSE) message += " (EADDRINUSE)";
    return Status::Error(message);
  }
  // From here the listener owns fd; Close() releases it.
  fd_ = fd;
  if (listen(fd, backlog) != 0) {
    *error_number = errno;
    return Status::Error("listen(" + name_ + "): " + std::strerror(errno));
  }
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return Status::Error("fcntl(" + name_ + "): " + std::strerror(errno));
  }
  spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int rc = uv_poll_init(loop_, &poll_, fd);
  if (rc != 0) return Status::Error("uv_poll_init(" + name_ + "): " + uv_strerror(rc));
  close_done_ = false;  // the poll handle is open: Close() must wait for its callback
  rc = uv_poll_start(&poll_, UV_READABLE, OnReadable);
  if (rc != 0) return Status::Error("uv_poll_start(" + name_ + "): " + uv_strerror(rc));
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) == 0) {
    name_ = EndpointName(reinterpret_cast<sockaddr*>(&bound));
    port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                        : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  return Status::Ok();
}

Status BindListeners(uv_loop_t* loop, const ListenOptions& options,
                     const Listener::AcceptCallback& on_connection,
                     std::vector<std::unique_ptr<Listener>>* out) {
  std::vector<Endpoint> endpoints;
  if (options.addresses.empty()) {
    Status s = Resolve(nullptr, options.port, /*optional=*/true, &endpoints);
    if (!s.ok()) return s;
  }
  for (const std::string& address : options.addresses) {
    if (address == "localhost") {
      // Both loopbacks, whatever /etc/hosts says; ::1 may be missing on hosts without IPv6.
      Status s = Resolve("127.0.0.1", options.port, false, &endpoints);
      if (!s.ok()) return s;
      s = Resolve("::1", options.port, true, &endpoints);
      if (!s.ok()) return s;
      continue;
    }
    Status s = Resolve(address.c_str(), options.port, false, &endpoints);
    if (!s.ok()) return s;
  }
  if (endpoints.empty()) return Status::Error("no address to listen on");

  uint16_t port = options.port;
  for (Endpoint& ep : endpoints) {
    auto* sa = reinterpret_cast<sockaddr*>(&ep.addr);
    if (port != 0) SetPort(sa, port);  // port 0: every address shares the first one's port
    auto listener = std::make_unique<Listener>(loop, on_connection, options.accept_errors);
    int err = 0;
    Status s =
        listener->Listen(sa, options.backlog, options.keepalive, options.bind_retry_seconds, &err);
    if (!s.ok()) {
      listener->Close();
      out->push_back(std::move(listener));  // kept until its close callback has run
      // An address family or address the host lacks is skipped when not named explicitly.
      if (ep.optional && (err == EAFNOSUPPORT || err == EADDRNOTAVAIL || err == EPROTONOSUPPORT)) {
        RH_LOG(kNotice, "not listening on %s: %s", EndpointName(sa).c_str(), s.message().c_str());
        continue;
      }
      return s;
    }
    if (port == 0) port = listener->port();
    RH_LOG(kInfo, "Listening on %s", listener->name().c_str());
    out->push_back(std::move(listener));
  }
  for (const auto& listener : *out) {
    if (!listener->closed()) return Status::Ok();
  }
  return Status::Error("could not listen on any address");
}

}  // namespace roundhouse::server
