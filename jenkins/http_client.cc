#include "jenkins/http_client.h"

#include <algorithm>
#include <cassert>
#include <deque>
#include <string>
#include <string_view>
#include <utility>

namespace roundhouse::jenkins {
namespace {

namespace http = protocol::http;

uv_handle_t* AsHandle(void* h) { return static_cast<uv_handle_t*>(h); }

std::string UvText(const char* what, int status) {
  return std::string(what) + ": " + uv_strerror(status);
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

const char* HttpErrorName(HttpError error) {
  switch (error) {
    case HttpError::kNone: return "none";
    case HttpError::kResolve: return "resolve";
    case HttpError::kConnect: return "connect";
    case HttpError::kTimeout: return "timeout";
    case HttpError::kReset: return "reset";
    case HttpError::kProtocol: return "protocol";
    case HttpError::kCancelled: return "cancelled";
  }
  return "unknown";
}

struct HttpClient::Impl {
  // One queued or in-flight request.
  struct Pending {
    HttpRequest request;
    Callback callback;
    bool retried = false;  // the one transparent retry has been used
  };

  // One TCP connection and the request it carries. Owned by Impl::conns; freed only once both
  // handles are closed and no getaddrinfo request is outstanding (libuv still writes into them).
  struct Conn {
    enum class State { kResolving, kConnecting, kBusy, kIdle, kClosing };

    Impl* owner = nullptr;
    State state = State::kResolving;
    uv_tcp_t tcp{};
    uv_timer_t timer{};  // connect, request or idle timeout, by state
    uv_getaddrinfo_t resolve{};
    uv_connect_t connect{};
    uv_write_t write{};
    bool resolving = false;     // `resolve` is outstanding
    int open_handles = 0;       // handles not yet through their close callback
    bool served = false;        // a previous request completed on this connection
    bool got_bytes = false;     // the current request received a response byte
    bool request_sent = false;  // the current request was written completely
    bool writing = false;       // `write` is outstanding (it cannot be reused until it returns)
    std::unique_ptr<Pending> active;  // the request on this connection (kResolving..kBusy)
    std::string out;                  // bytes being written; kept until the write callback
    std::unique_ptr<http::ResponseParser> parser;
    std::string read_buffer;
  };

  struct Completion {
    Callback callback;
    HttpResult result;
  };

  Impl(uv_loop_t* l, const HttpClientOptions& o) : loop(l), options(o) {}
  ~Impl() { assert(conns.empty() && !defer_open); }

  uv_loop_t* loop;
  const HttpClientOptions& options;
  std::deque<std::unique_ptr<Pending>> queue;  // waiting for a connection, FIFO
  std::vector<std::unique_ptr<Conn>> conns;     // every connection not yet freed
  std::vector<std::pair<std::string, std::string>> cookies;
  // Results waiting to be delivered from the defer timer: callbacks never run inside Send(),
  // and never in the middle of connection bookkeeping.
  std::deque<Completion> completions;
  uv_timer_t defer{};
  bool defer_open = false;  // `defer` is initialised and not yet closed
  bool closing = false;
  bool finishing = false;   // `defer` is being closed; the close callbacks run next
  std::vector<std::function<void()>> closed_callbacks;

  std::string HostHeader() const {
    std::string h = options.host.find(':') != std::string::npos ? "[" + options.host + "]"
                                                                : options.host;
    if (options.port != 80) h += ":" + std::to_string(options.port);
    return h;
  }

  void EnsureDefer() {
    if (defer_open) return;
    uv_timer_init(loop, &defer);
    defer.data = this;
    defer_open = true;
  }

  void Complete(Callback callback, HttpResult result) {
    if (closing && result.error != HttpError::kCancelled) {
      result = HttpResult{HttpError::kCancelled, "client closed", result.request_sent, {}};
    }
    completions.push_back({std::move(callback), std::move(result)});
    if (finishing) return;  // delivered by the defer handle's close callback
    EnsureDefer();
    uv_timer_start(&defer, OnDefer, 0, 0);
  }

  static void OnDefer(uv_timer_t* timer) {
    auto* self = static_cast<Impl*>(timer->data);
    // Callbacks may Send() or Close(); whatever they add is delivered on a later iteration.
    std::deque<Completion> batch;
    batch.swap(self->completions);
    for (Completion& c : batch) {
      if (c.callback) c.callback(std::move(c.result));
    }
    self->MaybeFinishClose();
  }

  void MaybeFinishClose() {
    if (!closing || finishing || !conns.empty() || !completions.empty()) return;
    finishing = true;
    EnsureDefer();
    uv_timer_stop(&defer);
    uv_close(AsHandle(&defer), [](uv_handle_t* h) {
      auto* self = static_cast<Impl*>(h->data);
      // A Send() while the handle was closing was answered kCancelled but not yet delivered.
      while (!self->completions.empty()) {
        Completion c = std::move(self->completions.front());
        self->completions.pop_front();
        if (c.callback) c.callback(std::move(c.result));
      }
      self->defer_open = false;
      self->finishing = false;
      auto callbacks = std::move(self->closed_callbacks);
      self->closed_callbacks.clear();
      // The owner may destroy the client from inside a callback: nothing touches `self` after.
      for (auto& cb : callbacks) {
        if (cb) cb();
      }
    });
  }

  void Send(HttpRequest request, Callback callback) {
    auto pending = std::make_unique<Pending>();
    pending->request = std::move(request);
    pending->callback = std::move(callback);
    if (closing) {
      Complete(std::move(pending->callback), {HttpError::kCancelled, "client closed", false, {}});
      return;
    }
    queue.push_back(std::move(pending));
    Pump();
  }

  size_t LiveConns() const {
    return static_cast<size_t>(std::count_if(conns.begin(), conns.end(), [](const auto& c) {
      return c->state != Conn::State::kClosing;
    }));
  }

  // Assigns queued requests to idle connections, then to new ones up to max_concurrency.
  void Pump() {
    while (!queue.empty() && !closing) {
      Conn* idle = nullptr;
      for (auto it = conns.rbegin(); it != conns.rend(); ++it) {
        if ((*it)->state == Conn::State::kIdle) {
          idle = it->get();
          break;
        }
      }
      if (idle != nullptr) {
        idle->active = std::move(queue.front());
        queue.pop_front();
        StartRequest(idle);
        continue;
      }
      if (LiveConns() >= static_cast<size_t>(std::max(1, options.max_concurrency))) return;
      std::unique_ptr<Pending> next = std::move(queue.front());
      queue.pop_front();
      Open(std::move(next));
    }
  }

  void Open(std::unique_ptr<Pending> pending) {
    auto owned = std::make_unique<Conn>();
    Conn* c = owned.get();
    c->owner = this;
    c->active = std::move(pending);
    c->tcp.data = c;
    c->timer.data = c;
    c->resolve.data = c;
    c->connect.data = c;
    c->write.data = c;
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    c->open_handles = 2;
    conns.push_back(std::move(owned));
    c->state = Conn::State::kResolving;
    uv_timer_start(&c->timer, OnTimer, static_cast<uint64_t>(std::max<int64_t>(0,
                   options.connect_timeout_ms)), 0);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    const std::string port = std::to_string(options.port);
    const int rc = uv_getaddrinfo(loop, &c->resolve, OnResolved, options.host.c_str(),
                                  port.c_str(), &hints);
    if (rc != 0) {
      Fail(c, HttpError::kResolve, UvText(("cannot resolve " + options.host).c_str(), rc));
      return;
    }
    c->resolving = true;
  }

  static void OnResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
    auto* c = static_cast<Conn*>(req->data);
    Impl* self = c->owner;
    c->resolving = false;
    if (c->state != Conn::State::kResolving) {
      uv_freeaddrinfo(res);
      self->MaybeFree(c);
      return;
    }
    if (status != 0 || res == nullptr) {
      uv_freeaddrinfo(res);
      self->Fail(c, HttpError::kResolve, UvText(("cannot resolve " + self->options.host).c_str(),
                                                status != 0 ? status : UV_EAI_NONAME));
      return;
    }
    c->state = Conn::State::kConnecting;
    const int rc = uv_tcp_connect(&c->connect, &c->tcp, res->ai_addr, OnConnected);
    uv_freeaddrinfo(res);
    if (rc != 0) self->Fail(c, HttpError::kConnect, UvText("cannot connect", rc));
  }

  static void OnConnected(uv_connect_t* req, int status) {
    auto* c = static_cast<Conn*>(req->data);
    if (status == UV_ECANCELED || c->state != Conn::State::kConnecting) return;
    Impl* self = c->owner;
    if (status != 0) {
      self->Fail(c, HttpError::kConnect, UvText("cannot connect", status));
      return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    const int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), OnAlloc, OnRead);
    if (rc != 0) {
      self->Fail(c, HttpError::kConnect, UvText("cannot read", rc));
      return;
    }
    self->StartRequest(c);
  }

  void StartRequest(Conn* c) {
    c->state = Conn::State::kBusy;
    c->got_bytes = false;
    c->request_sent = false;
    const HttpRequest& r = c->active->request;
    http::HttpLimits limits = options.limits;
    limits.max_body_bytes = BodyCap(c);
    c->parser = std::make_unique<http::ResponseParser>(limits);
    if (r.method == "HEAD") c->parser->ExpectHeadResponse();
    std::vector<http::Header> headers = r.headers;
    if (!cookies.empty()) {
      std::string cookie;
      for (const auto& [name, value] : cookies) {
        if (!cookie.empty()) cookie += "; ";
        cookie += name + "=" + value;
      }
      headers.push_back({"Cookie", std::move(cookie)});
    }
    c->out = http::FormatRequest(r.method, r.target, HostHeader(), headers, r.body);
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, OnTimer,
                   static_cast<uint64_t>(std::max<int64_t>(0, options.request_timeout_ms)), 0);
    uv_buf_t buf = uv_buf_init(c->out.data(), static_cast<unsigned>(c->out.size()));
    const int rc = uv_write(&c->write, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1, OnWritten);
    if (rc != 0) {
      FailOrRetry(c, UvText("write failed", rc));
      return;
    }
    c->writing = true;
  }

  static void OnWritten(uv_write_t* req, int status) {
    auto* c = static_cast<Conn*>(req->data);
    c->writing = false;
    if (status == UV_ECANCELED || c->state != Conn::State::kBusy) return;
    if (status != 0) {
      c->owner->FailOrRetry(c, UvText("write failed", status));
      return;
    }
    c->request_sent = true;
  }

  static void OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
    auto* c = static_cast<Conn*>(handle->data);
    c->read_buffer.resize(64 * 1024);
    *buf = uv_buf_init(c->read_buffer.data(), static_cast<unsigned>(c->read_buffer.size()));
  }

  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
    auto* c = static_cast<Conn*>(stream->data);
    Impl* self = c->owner;
    if (nread == 0 || c->state == Conn::State::kClosing) return;
    if (c->state != Conn::State::kBusy) {
      // EOF or stray bytes on an idle connection: it is no longer usable.
      self->CloseConn(c);
      self->Pump();
      return;
    }
    if (nread < 0) {
      const http::ParseResult r = c->parser->FinishEof();
      if (r == http::ParseResult::kMessage) {
        self->Succeed(c);
        return;
      }
      if (r == http::ParseResult::kError && c->got_bytes) {
        self->Fail(c, HttpError::kReset,
                   nread == UV_EOF ? c->parser->error()
                                   : UvText("connection reset", static_cast<int>(nread)));
        return;
      }
      self->FailOrRetry(c, nread == UV_EOF ? "connection closed before a response"
                                           : UvText("connection reset", static_cast<int>(nread)));
      return;
    }
    c->got_bytes = true;
    const http::ParseResult r =
        c->parser->Feed(std::string_view(c->read_buffer.data(), static_cast<size_t>(nread)));
    if (r == http::ParseResult::kError) {
      self->Fail(c, HttpError::kProtocol, "malformed response: " + c->parser->error() +
                                              (c->parser->error() == "body over the size limit"
                                                   ? " (" + std::to_string(self->BodyCap(c)) + " bytes)"
                                                   : std::string()));
      return;
    }
    if (r == http::ParseResult::kMessage) self->Succeed(c);
  }

  static void OnTimer(uv_timer_t* timer) {
    auto* c = static_cast<Conn*>(timer->data);
    Impl* self = c->owner;
    switch (c->state) {
      case Conn::State::kResolving:
      case Conn::State::kConnecting:
        self->Fail(c, HttpError::kConnect, "connect timeout");
        return;
      case Conn::State::kBusy:
        self->Fail(c, HttpError::kTimeout, "request timeout");
        return;
      case Conn::State::kIdle:
        self->CloseConn(c);
        return;
      case Conn::State::kClosing:
        return;
    }
  }

  size_t BodyCap(const Conn* c) const {
    const size_t own = c->active ? c->active->request.max_body_bytes : 0;
    return own != 0 ? std::min(own, options.limits.max_body_bytes) : options.limits.max_body_bytes;
  }

  void StoreCookies(const http::Response& response) {
    for (std::string_view line : response.GetAll("Set-Cookie")) {
      line = line.substr(0, line.find(';'));
      const size_t eq = line.find('=');
      if (eq == std::string_view::npos) continue;
      const std::string name(TrimSpaces(line.substr(0, eq)));
      const std::string value(TrimSpaces(line.substr(eq + 1)));
      if (name.empty() || name.size() + value.size() > HttpClient::kMaxCookieBytes) continue;
      auto it = std::find_if(cookies.begin(), cookies.end(),
                             [&](const auto& kv) { return kv.first == name; });
      if (it != cookies.end()) {
        it->second = value;
      } else {
        if (cookies.size() >= HttpClient::kMaxCookies) cookies.erase(cookies.begin());
        cookies.emplace_back(name, value);
      }
    }
  }

  void Succeed(Conn* c) {
    HttpResult result;
    result.request_sent = true;
    result.response = c->parser->Take();
    // Anything after the response on a connection we do not pipeline on is junk.
    // So is a connection whose request is still being written (the server answered early).
    const bool reusable = result.response.keep_alive && !c->writing &&
                          c->parser->Feed({}) == http::ParseResult::kNeedMore;
    StoreCookies(result.response);
    std::unique_ptr<Pending> done = std::move(c->active);
    c->served = true;
    if (reusable) {
      c->state = Conn::State::kIdle;
      uv_timer_stop(&c->timer);
      uv_timer_start(&c->timer, OnTimer,
                     static_cast<uint64_t>(std::max<int64_t>(0, options.idle_timeout_ms)), 0);
    } else {
      CloseConn(c);
    }
    Complete(std::move(done->callback), std::move(result));
    Pump();
  }

  // A reused connection that failed before any response byte most likely raced the server
  // closing it as idle: retry once on a fresh connection.
  void FailOrRetry(Conn* c, std::string why) {
    if (c->served && !c->got_bytes && c->active && !c->active->retried) {
      std::unique_ptr<Pending> again = std::move(c->active);
      again->retried = true;
      CloseConn(c);
      queue.push_front(std::move(again));
      // The retry must not land on another connection the server may also have dropped.
      Open(std::move(queue.front()));
      queue.pop_front();
      return;
    }
    Fail(c, HttpError::kReset, std::move(why));
  }

  void Fail(Conn* c, HttpError error, std::string why) {
    std::unique_ptr<Pending> failed = std::move(c->active);
    const bool sent = c->request_sent;
    CloseConn(c);
    if (failed) Complete(std::move(failed->callback), {error, std::move(why), sent, {}});
    Pump();
  }

  void CloseConn(Conn* c) {
    if (c->state == Conn::State::kClosing) return;
    c->state = Conn::State::kClosing;
    uv_timer_stop(&c->timer);
    if (c->resolving) uv_cancel(reinterpret_cast<uv_req_t*>(&c->resolve));
    auto on_closed = [](uv_handle_t* h) {
      auto* conn = static_cast<Conn*>(h->data);
      --conn->open_handles;
      conn->owner->MaybeFree(conn);
    };
    uv_close(AsHandle(&c->tcp), on_closed);
    uv_close(AsHandle(&c->timer), on_closed);
  }

  void MaybeFree(Conn* c) {
    if (c->open_handles > 0 || c->resolving) return;
    auto it = std::find_if(conns.begin(), conns.end(), [c](const auto& p) { return p.get() == c; });
    assert(it != conns.end());
    conns.erase(it);
    MaybeFinishClose();
  }

  void Close(std::function<void()> closed) {
    closed_callbacks.push_back(std::move(closed));
    if (closing) {
      // Still closing: `closed` joins the others. Already closed: a new round on the defer
      // handle answers from a later iteration all the same.
      MaybeFinishClose();
      return;
    }
    closing = true;
    EnsureDefer();
    for (Completion& c : completions) {
      if (c.result.error != HttpError::kCancelled) {
        c.result = HttpResult{HttpError::kCancelled, "client closed", c.result.request_sent, {}};
      }
    }
    while (!queue.empty()) {
      std::unique_ptr<Pending> p = std::move(queue.front());
      queue.pop_front();
      Complete(std::move(p->callback), {HttpError::kCancelled, "client closed", false, {}});
    }
    for (const auto& owned : conns) {
      Conn* c = owned.get();
      if (c->active) {
        std::unique_ptr<Pending> p = std::move(c->active);
        Complete(std::move(p->callback),
                 {HttpError::kCancelled, "client closed", c->request_sent, {}});
      }
      CloseConn(c);
    }
    MaybeFinishClose();
  }
};

HttpClient::HttpClient(uv_loop_t* loop, HttpClientOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(loop, options_)) {}

HttpClient::~HttpClient() = default;

void HttpClient::Send(HttpRequest request, Callback callback) {
  impl_->Send(std::move(request), std::move(callback));
}

void HttpClient::Close(std::function<void()> closed) { impl_->Close(std::move(closed)); }

void HttpClient::ClearCookies() { impl_->cookies.clear(); }

size_t HttpClient::in_flight() const {
  return static_cast<size_t>(std::count_if(impl_->conns.begin(), impl_->conns.end(),
                                           [](const auto& c) { return c->active != nullptr; }));
}

size_t HttpClient::queued() const { return impl_->queue.size(); }

}  // namespace roundhouse::jenkins
