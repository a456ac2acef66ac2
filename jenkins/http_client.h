// An asynchronous HTTP(S) client for one origin (scheme, host, port) on the server's libuv loop,
// built on libcurl's multi interface (doc/jenkins-http.md says why): keep-alive connection
// reuse, at most `max_concurrency` requests in flight (the rest wait here in FIFO order), connect
// and whole-request timeouts, TLS with certificate and host name verification, proxies, and a
// small bounded cookie jar. libcurl never gets a thread or a loop of its own: its sockets are
// watched by uv_poll_t handles and its one timer is a uv_timer_t, all on the caller's loop, and
// name resolution runs in libcurl's resolver thread (Debian's build), never blocking the loop.
//
// Used by RestClient (one per Jenkins master). Deliberately shares no code with the Jenkins
// simulator in tools/ (doc/jenkins.md §6).
//
// Every Send() gets exactly one callback, never from inside Send() itself, also when the client
// is closed first (error kCancelled). After Close() no callback runs except those kCancelled
// ones, which run before Close()'s own callback.
//
// Thread-safety: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "protocol/http.h"

namespace roundhouse::jenkins {

// TLS for an https:// origin. Files are read by libcurl/OpenSSL when a connection is made.
struct TlsOptions {
  bool enabled = false;   // https
  bool verify = true;     // peer certificate chain and host name; false only with a loud warning
  std::string ca_file;    // PEM bundle replacing the system store; empty: the system store
  std::string cert_file;  // optional client certificate (PEM) ...
  std::string key_file;   // ... and its unencrypted key (PEM); empty: in cert_file
};

struct HttpClientOptions {
  std::string host;        // name or address literal (IPv6 without brackets)
  uint16_t port = 80;
  TlsOptions tls;
  // Proxy URL ("http://proxy:3128"); empty: libcurl's standard environment (https_proxy,
  // http_proxy, all_proxy, no_proxy); "none": never a proxy, whatever the environment says.
  std::string proxy;
  int64_t connect_timeout_ms = 5000;   // resolve + TCP connect
  int64_t request_timeout_ms = 15000;  // from the first byte written to the last byte read
  int max_concurrency = 8;             // simultaneous requests = open connections at most
  protocol::http::HttpLimits limits;
  // Idle keep-alive connections are not reused after this long (rounded up to whole seconds:
  // libcurl's granularity).
  int64_t idle_timeout_ms = 30000;
};

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";  // origin-form, already encoded: "/job/x/api/json?tree=..."
  std::vector<protocol::http::Header> headers;  // besides Host, Content-Length, Cookie
  std::string body;
  // Cap on this response's decoded body, below the client's limits.max_body_bytes (0: that
  // limit). A longer body fails the request with kProtocol as soon as the declared length or
  // the bytes received pass it, before the rest is read; the connection is closed.
  size_t max_body_bytes = 0;
};

enum class HttpError {
  kNone,
  kResolve,    // name resolution failed
  kConnect,    // refused, unreachable, or connect timeout
  kTimeout,    // request timeout after connecting
  kReset,      // connection closed/reset before a complete response
  kProtocol,   // malformed response or over a limit
  kTls,        // TLS handshake or certificate verification failed (error_text says which)
  kCancelled,  // Close() before completion
};
const char* HttpErrorName(HttpError error);

struct HttpResult {
  HttpError error = HttpError::kNone;
  std::string error_text;  // human-readable cause when error != kNone (no secrets)
  // True once every byte of the request was written: a POST that then fails with kTimeout or
  // kReset may have taken effect on the server (the ambiguous trigger of doc/jenkins.md §4.7).
  bool request_sent = false;
  protocol::http::Response response;  // valid when error == kNone
};

class HttpClient {
 public:
  static constexpr size_t kMaxCookies = 16;
  static constexpr size_t kMaxCookieBytes = 4096;  // name + value
  using Callback = std::function<void(HttpResult&&)>;

  HttpClient(uv_loop_t* loop, HttpClientOptions options);
  // Must be Close()d and its callback run before destruction if any handle was ever opened.
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Queues a request. A request that fails before being sent on a reused keep-alive connection
  // (the server closed it meanwhile) is retried once on a fresh connection, transparently
  // (libcurl does this). Redirects are never followed: a 3xx reaches the caller as it is.
  void Send(HttpRequest request, Callback callback);

  // Cancels everything (kCancelled callbacks), closes every connection, then calls `closed`
  // (from a later loop iteration). Idempotent; `closed` may be empty.
  void Close(std::function<void()> closed);

  // Cookies: every `Set-Cookie` received is stored (name=value only; attributes ignored;
  // a later value replaces an earlier one) and sent back in a `Cookie` header on every request.
  // The jar is bounded: at most kMaxCookies cookies (a new name past that replaces the oldest)
  // and a cookie longer than kMaxCookieBytes is ignored, so a master cannot grow our requests.
  void ClearCookies();

  size_t in_flight() const;
  size_t queued() const;
  const HttpClientOptions& options() const { return options_; }

 private:
  struct Impl;
  HttpClientOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace roundhouse::jenkins
