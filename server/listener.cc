#include "server/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "server/base/log.h"

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

Listener::Listener(uv_loop_t* loop, AcceptCallback on_connection)
    : on_connection_(std::move(on_connection)) {
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
  initialized_ = true;
  close_done_ = false;
}

Listener::~Listener() {
  // The owner keeps listeners until the loop has run the close callbacks.
  assert(close_done_);
}

void Listener::Close() {
  if (closed_) return;
  closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), OnClose);
}

void Listener::OnConnection(uv_stream_t* server, int status) {
  auto* listener = static_cast<Listener*>(server->data);
  if (listener->closed_) return;
  listener->on_connection_(*listener, status);
}

void Listener::OnClose(uv_handle_t* handle) {
  static_cast<Listener*>(handle->data)->close_done_ = true;
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
  int rc = uv_tcp_open(&tcp_, fd);
  if (rc != 0) {
    close(fd);
    return Status::Error("uv_tcp_open(" + name_ + "): " + uv_strerror(rc));
  }
  // From here the handle owns fd; uv_close releases it.
  rc = uv_listen(stream(), backlog, Listener::OnConnection);
  if (rc != 0) return Status::Error("listen(" + name_ + "): " + uv_strerror(rc));
  sockaddr_storage bound{};
  int bound_len = sizeof(bound);
  if (uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&bound), &bound_len) == 0) {
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
    auto listener = std::make_unique<Listener>(loop, on_connection);
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
