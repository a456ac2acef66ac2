#include "jenkins/http_client.h"

#include <curl/curl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cassert>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "base/text.h"

namespace roundhouse::jenkins {
namespace {

namespace http = protocol::http;

uv_handle_t* AsHandle(void* h) { return static_cast<uv_handle_t*>(h); }

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// curl_global_init is not safe to race with anything else that uses libcurl or OpenSSL: it runs
// once, from the first client's constructor (the loop thread), never at static-init time.
void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// A header value we put on the wire must not end the line early (a crumb field or value from a
// hostile master, for example). RestClient already refuses those; this is the last guard.
bool HeaderIsClean(const http::Header& h) {
  if (h.name.empty()) return false;
  for (char c : h.name) {
    if (c == ':' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0') return false;
  }
  for (char c : h.value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

// The verification failures an operator can act on, by OpenSSL's verify result (which libcurl
// hands back as CURLINFO_SSL_VERIFYRESULT), in the words `jenkins show` prints.
std::string VerifyText(long verify_result, const TlsOptions& tls) {
  const std::string store =
      tls.ca_file.empty() ? std::string("the system store") : "tls.ca_file " + tls.ca_file;
  switch (verify_result) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "TLS: the server's certificate has expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "TLS: the server's certificate is not valid yet";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return "TLS: the server's certificate is not signed by a CA in " + store;
    case X509_V_ERR_HOSTNAME_MISMATCH:
      return "";  // worded by the caller, which knows the host
    case X509_V_ERR_CERT_REVOKED:
      return "TLS: the server's certificate is revoked";
    default:
      return std::string("TLS: the server's certificate failed verification: ") +
             X509_verify_cert_error_string(verify_result);
  }
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
    case HttpError::kTls:
      return "tls";
    case HttpError::kCancelled: return "cancelled";
  }
  return "unknown";
}

struct HttpClient::Impl {
  // One queued request.
  struct Pending {
    HttpRequest request;
    Callback callback;
  };

  // One request handed to libcurl. Owned by Impl::transfers from curl_multi_add_handle until it
  // is removed from the multi handle (done, failed or cancelled); libcurl's callbacks get a raw
  // pointer to it, valid exactly that long.
  struct Transfer {
    Impl* owner = nullptr;
    std::unique_ptr<Pending> pending;
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    char error_buffer[CURL_ERROR_SIZE] = {};
    size_t body_cap = 0;
    http::Response response;
    size_t head_bytes = 0;  // response head bytes seen (every interim response counts)
    bool in_body = false;   // the final head ended; header lines now are trailers
    // Set when one of our callbacks stops the transfer (a limit); the CURLcode is then only
    // CURLE_WRITE_ERROR and this says why.
    std::string abort_text;
    // What of the request libcurl reported written (its debug callback): the request head to
    // the origin (not a proxy's CONNECT) and the body bytes after it.
    bool head_out = false;
    size_t body_out = 0;

    ~Transfer() {
      if (easy != nullptr) curl_easy_cleanup(easy);
      curl_slist_free_all(headers);
    }
    bool request_sent() const { return head_out && body_out >= pending->request.body.size(); }
  };

  // libcurl's interest in one socket. Created on its first CURL_POLL_* for the socket, closed
  // on CURL_POLL_REMOVE (libcurl closes the socket only after that) or when the client closes;
  // freed in the handle's close callback.
  struct Watch {
    Impl* owner = nullptr;
    curl_socket_t socket = CURL_SOCKET_BAD;
    uv_poll_t poll{};
  };

  struct Completion {
    Callback callback;
    HttpResult result;
  };

  Impl(uv_loop_t* l, const HttpClientOptions& o) : loop(l), options(o) { GlobalInit(); }
  ~Impl() { assert(multi == nullptr && transfers.empty() && open_handles == 0 && !defer_open); }

  uv_loop_t* loop;
  const HttpClientOptions& options;
  CURLM* multi = nullptr;  // created on the first Send, cleaned up by Close
  // TLS sessions shared by this client's transfers, so a new connection to the master resumes
  // the session instead of a full handshake (libcurl keeps them per easy handle otherwise).
  // Created and cleaned up with `multi`; one thread only, so no lock callbacks.
  CURLSH* share = nullptr;
  uv_timer_t curl_timer{};                     // libcurl's one timeout; initialised with `multi`
  std::deque<std::unique_ptr<Pending>> queue;  // waiting for a slot, FIFO
  std::vector<std::unique_ptr<Transfer>> transfers;  // in libcurl's hands
  std::vector<Watch*> watches;                       // open uv_poll_t handles
  int open_handles = 0;  // curl_timer + watches not yet through their close callbacks
  std::vector<std::pair<std::string, std::string>> cookies;
  // Results waiting to be delivered from the defer timer: callbacks never run inside Send(),
  // and never from inside a libcurl call.
  std::deque<Completion> completions;
  uv_timer_t defer{};
  bool defer_open = false;  // `defer` is initialised and not yet closed
  bool closing = false;
  bool finishing = false;   // `defer` is being closed; the close callbacks run next
  std::vector<std::function<void()>> closed_callbacks;

  std::string Origin() const {
    std::string h = options.host.find(':') != std::string::npos ? "[" + options.host + "]"
                                                                : options.host;
    return (options.tls.enabled ? "https://" : "http://") + h + ":" + std::to_string(options.port);
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
    if (!closing || finishing || open_handles > 0 || !completions.empty()) return;
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

  // ---- libcurl's multi handle on the loop ----

  void EnsureMulti() {
    if (multi != nullptr) return;
    multi = curl_multi_init();
    share = curl_share_init();
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, OnCurlSocket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, OnCurlTimer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
    const long slots = std::max(1, options.max_concurrency);
    // Our queue already keeps at most `slots` transfers in libcurl; these keep its connection
    // cache the same size, so an idle connection is kept for each slot and no more.
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, slots);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, slots);
    uv_timer_init(loop, &curl_timer);
    curl_timer.data = this;
    ++open_handles;
  }

  static int OnCurlTimer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<Impl*>(userp);
    if (timeout_ms < 0) {
      uv_timer_stop(&self->curl_timer);
    } else {
      // 0 means "now", but libcurl must not be re-entered from inside this callback.
      uv_timer_start(&self->curl_timer, OnCurlTimeout, static_cast<uint64_t>(timeout_ms), 0);
    }
    return 0;
  }

  static void OnCurlTimeout(uv_timer_t* timer) {
    auto* self = static_cast<Impl*>(timer->data);
    if (self->multi == nullptr) return;
    int running = 0;
    curl_multi_socket_action(self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    self->Harvest();
  }

  static int OnCurlSocket(CURL*, curl_socket_t s, int what, void* userp, void* socketp) {
    auto* self = static_cast<Impl*>(userp);
    auto* w = static_cast<Watch*>(socketp);
    if (what == CURL_POLL_REMOVE) {
      if (w != nullptr) self->CloseWatch(w);
      return 0;
    }
    if (self->multi == nullptr) return 0;  // inside curl_multi_cleanup
    if (w == nullptr) {
      w = new Watch;
      w->owner = self;
      w->socket = s;
      w->poll.data = w;
      if (uv_poll_init_socket(self->loop, &w->poll, s) != 0) {
        delete w;
        return -1;  // libcurl fails the transfer on this socket
      }
      ++self->open_handles;
      self->watches.push_back(w);
      curl_multi_assign(self->multi, s, w);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
    uv_poll_start(&w->poll, events, OnPoll);
    return 0;
  }

  static void OnPoll(uv_poll_t* poll, int status, int events) {
    auto* w = static_cast<Watch*>(poll->data);
    Impl* self = w->owner;
    if (self->multi == nullptr) return;
    int flags = 0;
    if (status < 0) {
      flags = CURL_CSELECT_ERR;
    } else {
      if ((events & UV_READABLE) != 0) flags |= CURL_CSELECT_IN;
      if ((events & UV_WRITABLE) != 0) flags |= CURL_CSELECT_OUT;
    }
    int running = 0;
    // `w` may be closed from inside (CURL_POLL_REMOVE); only `self` is used after.
    curl_multi_socket_action(self->multi, w->socket, flags, &running);
    self->Harvest();
  }

  void CloseWatch(Watch* w) {
    auto it = std::find(watches.begin(), watches.end(), w);
    if (it == watches.end()) return;
    watches.erase(it);
    if (multi != nullptr) curl_multi_assign(multi, w->socket, nullptr);
    uv_poll_stop(&w->poll);
    uv_close(AsHandle(&w->poll), [](uv_handle_t* h) {
      auto* watch = static_cast<Watch*>(h->data);
      Impl* self = watch->owner;
      delete watch;
      --self->open_handles;
      self->MaybeFinishClose();
    });
  }

  // Collects every finished transfer libcurl reports, then refills the slots.
  void Harvest() {
    if (multi == nullptr) return;
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
      const CURLcode code = msg->data.result;
      curl_multi_remove_handle(multi, msg->easy_handle);
      std::unique_ptr<Transfer> owned = Release(t);
      Finish(*owned, code);
    }
    Pump();
  }

  std::unique_ptr<Transfer> Release(Transfer* t) {
    auto it = std::find_if(transfers.begin(), transfers.end(),
                           [t](const auto& p) { return p.get() == t; });
    assert(it != transfers.end());
    std::unique_ptr<Transfer> owned = std::move(*it);
    transfers.erase(it);
    return owned;
  }

  // ---- requests ----

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

  void Pump() {
    while (!queue.empty() && !closing &&
           transfers.size() < static_cast<size_t>(std::max(1, options.max_concurrency))) {
      std::unique_ptr<Pending> next = std::move(queue.front());
      queue.pop_front();
      Start(std::move(next));
    }
  }

  size_t BodyCap(const HttpRequest& r) const {
    const size_t own = r.max_body_bytes;
    return own != 0 ? std::min(own, options.limits.max_body_bytes) : options.limits.max_body_bytes;
  }

  void Start(std::unique_ptr<Pending> pending) {
    EnsureMulti();
    auto owned = std::make_unique<Transfer>();
    Transfer* t = owned.get();
    t->owner = this;
    t->pending = std::move(pending);
    const HttpRequest& r = t->pending->request;
    t->body_cap = BodyCap(r);
    for (const http::Header& h : r.headers) {
      if (!HeaderIsClean(h)) {
        Complete(std::move(t->pending->callback),
                 {HttpError::kProtocol, "refused to send a header with a line break", false, {}});
        return;
      }
    }
    t->easy = curl_easy_init();
    if (t->easy == nullptr) {
      Complete(std::move(t->pending->callback),
               {HttpError::kConnect, "out of memory for a transfer", false, {}});
      return;
    }
    Configure(t);
    transfers.push_back(std::move(owned));
    if (curl_multi_add_handle(multi, t->easy) != CURLM_OK) {
      std::unique_ptr<Transfer> failed = Release(t);
      Complete(std::move(failed->pending->callback),
               {HttpError::kConnect, "libcurl refused the transfer", false, {}});
    }
  }

  void Configure(Transfer* t) {
    CURL* e = t->easy;
    const HttpRequest& r = t->pending->request;
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_SHARE, share);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error_buffer);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_URL, (Origin() + r.target).c_str());
    // The target is already encoded exactly as Jenkins expects: no "/../" squashing.
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    // Today's redirect policy: none are followed (a 201's Location is data, not a hop), so
    // credentials can never be carried to another host.
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    // Bodies are delivered as sent: the caps apply to what Jenkins wrote.
    curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::max<int64_t>(1, options.connect_timeout_ms)));
    // libcurl's timeout covers the whole transfer, connect included; ours starts at the first
    // byte written, so the connect allowance is added.
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(std::max<int64_t>(1, options.connect_timeout_ms) +
                                       std::max<int64_t>(1, options.request_timeout_ms)));
    curl_easy_setopt(
        e, CURLOPT_MAXAGE_CONN,
        static_cast<long>(std::max<int64_t>(1, (options.idle_timeout_ms + 999) / 1000)));

    if (r.method == "GET") {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (r.method == "HEAD") {
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
      if (r.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.data());  // lives as long as `t`
    }

    // Headers: ours, the jar's Cookie, and none of libcurl's own extras ("Expect:" turns off
    // the 100-continue round trip; "Accept:" is replaced when the caller gives one).
    for (const http::Header& h : r.headers) {
      t->headers = curl_slist_append(t->headers, (h.name + ": " + h.value).c_str());
    }
    if (!cookies.empty()) {
      std::string cookie = "Cookie: ";
      for (size_t i = 0; i < cookies.size(); ++i) {
        if (i > 0) cookie += "; ";
        cookie += cookies[i].first + "=" + cookies[i].second;
      }
      t->headers = curl_slist_append(t->headers, cookie.c_str());
    }
    t->headers = curl_slist_append(t->headers, "Expect:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    // Our headers (Authorization above all) go to the origin only, never to a proxy.
    curl_easy_setopt(e, CURLOPT_HEADEROPT, CURLHEADER_SEPARATE);
    curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);

    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    // The debug callback is how we learn that the request left (request_sent): libcurl reports
    // each piece of the request after writing it.
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, OnDebug);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, t);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);

    if (options.proxy == "none") {
      curl_easy_setopt(e, CURLOPT_PROXY, "");  // "" disables the environment's proxies too
    } else if (!options.proxy.empty()) {
      curl_easy_setopt(e, CURLOPT_PROXY, options.proxy.c_str());
    }

    const TlsOptions& tls = options.tls;
    if (tls.enabled) {
      curl_easy_setopt(e, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, tls.verify ? 1L : 0L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, tls.verify ? 2L : 0L);
      if (!tls.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, tls.ca_file.c_str());
      if (!tls.cert_file.empty()) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, tls.cert_file.c_str());
        curl_easy_setopt(e, CURLOPT_SSLKEY,
                         (tls.key_file.empty() ? tls.cert_file : tls.key_file).c_str());
      }
    }
  }

  static int OnDebug(CURL*, curl_infotype type, char* data, size_t size, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    if (type == CURLINFO_HEADER_OUT) {
      // A CONNECT to the proxy is not our request.
      if (!std::string_view(data, size).starts_with("CONNECT ")) t->head_out = true;
    } else if (type == CURLINFO_DATA_OUT && t->head_out) {
      t->body_out += size;
    }
    return 0;
  }

  // One response head line (status line, header, blank line, or a trailer), bounded by the
  // client's head limits. Returning anything but `n` stops the transfer (CURLE_WRITE_ERROR).
  static size_t OnHeader(char* data, size_t size, size_t count, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    const size_t n = size * count;
    const http::HttpLimits& limits = t->owner->options.limits;
    t->head_bytes += n;
    if (t->head_bytes > limits.max_head_bytes) {
      t->abort_text = "malformed response: head over the size limit (" +
                      std::to_string(limits.max_head_bytes) + " bytes)";
      return 0;
    }
    if (t->in_body) return n;  // a trailer: counted, not kept
    const std::string_view line = TrimSpaces(std::string_view(data, n));
    if (line.starts_with("HTTP/")) {
      // A new head: an interim (1xx) response's headers are dropped.
      t->response.headers.clear();
      const size_t sp = line.find(' ');
      int status = 0;
      if (sp != std::string_view::npos && line.size() >= sp + 4) {
        for (size_t i = sp + 1; i < sp + 4; ++i) {
          const char c = line[i];
          if (c < '0' || c > '9') return 0;
          status = status * 10 + (c - '0');
        }
        t->response.reason = std::string(TrimSpaces(line.substr(sp + 4)));
      }
      t->response.status = status;
      t->response.keep_alive = !line.starts_with("HTTP/1.0");
      return n;
    }
    if (line.empty()) {
      if (t->response.status >= 200) return EndOfHead(t) ? n : 0;
      return n;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return n;  // libcurl has seen worse; ignore it
    if (t->response.headers.size() >= limits.max_headers) {
      t->abort_text =
          "malformed response: more than " + std::to_string(limits.max_headers) + " header fields";
      return 0;
    }
    http::Header h{std::string(TrimSpaces(line.substr(0, colon))),
                   std::string(TrimSpaces(line.substr(colon + 1)))};
    if (EqualsIgnoreCase(h.name, "Connection") && EqualsIgnoreCase(h.value, "close")) {
      t->response.keep_alive = false;
    }
    t->response.headers.push_back(std::move(h));
    return n;
  }

  // The final head is complete: a declared length over the cap fails before any body byte.
  static bool EndOfHead(Transfer* t) {
    t->in_body = true;
    bool found = false;
    const std::string_view length = t->response.Get("Content-Length", &found);
    if (!found) return true;
    unsigned long long declared = 0;
    for (char c : length) {
      if (c < '0' || c > '9') return true;  // libcurl itself refuses a bad length
      if (declared > (1ULL << 50)) break;
      declared = declared * 10 + static_cast<unsigned long long>(c - '0');
    }
    if (declared > t->body_cap) {
      t->abort_text = "malformed response: body over the size limit (" +
                      std::to_string(t->body_cap) + " bytes)";
      return false;
    }
    t->response.body.reserve(static_cast<size_t>(declared));
    return true;
  }

  // Body bytes: appended until the cap, which is never exceeded (the transfer stops instead).
  static size_t OnBody(char* data, size_t size, size_t count, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    const size_t n = size * count;
    if (n > t->body_cap - t->response.body.size()) {
      t->abort_text = "malformed response: body over the size limit (" +
                      std::to_string(t->body_cap) + " bytes)";
      return 0;
    }
    // Grow by doubling up to 1 MiB, then straight to the cap in one step: a chain of doublings
    // to 16 MiB leaves each freed step in the heap (and std::string's own doubling from 15 bytes
    // would end at 30 MiB). Pages of the reserve are resident only once written.
    std::string& body = t->response.body;
    if (body.size() + n > body.capacity()) {
      constexpr size_t kDoublingLimit = 1024 * 1024;
      const size_t want = std::max(body.size() + n, 2 * body.capacity());
      body.reserve(want <= kDoublingLimit ? std::min(t->body_cap, want) : t->body_cap);
    }
    body.append(data, n);
    return n;
  }

  void StoreCookies(const http::Response& response) {
    for (std::string_view line : response.GetAll("Set-Cookie")) {
      line = line.substr(0, line.find(';'));
      const size_t eq = line.find('=');
      if (eq == std::string_view::npos) continue;
      const std::string name(TrimSpaces(line.substr(0, eq)));
      const std::string value(TrimSpaces(line.substr(eq + 1)));
      if (name.empty() || name.size() + value.size() > HttpClient::kMaxCookieBytes) continue;
      const http::Header as_header{name, value};
      if (!HeaderIsClean(as_header) || name.find_first_of(";=,") != std::string::npos ||
          value.find(';') != std::string::npos) {
        continue;
      }
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

  void Finish(Transfer& t, CURLcode code) {
    HttpResult result;
    result.request_sent = t.request_sent();
    if (code == CURLE_OK) {
      if (t.response.status < 100) {
        result.error = HttpError::kProtocol;
        result.error_text = "malformed response: no status line";
      } else if (!t.in_body) {
        // libcurl accepts a connection that closes inside the head ("HTTP/1.1 200 OK\r\nCont")
        // as a complete response; it is not one. A proxy turns a reset into exactly that close.
        result.error = HttpError::kReset;
        result.error_text = "connection closed mid-response: the head was cut off";
      } else {
        result.response = std::move(t.response);
        StoreCookies(result.response);
      }
    } else {
      Classify(t, code, &result);
    }
    Complete(std::move(t.pending->callback), std::move(result));
  }

  // Maps libcurl's outcome to our error kinds and to a text that names the cause: `jenkins
  // show`, /api/jenkins and the log print it as the master's last error.
  void Classify(const Transfer& t, CURLcode code, HttpResult* out) {
    const std::string detail =
        t.error_buffer[0] != '\0' ? std::string(t.error_buffer) : curl_easy_strerror(code);
    auto set = [out](HttpError e, std::string text) {
      out->error = e;
      out->error_text = std::move(text);
    };
    switch (code) {
      case CURLE_WRITE_ERROR:
        set(HttpError::kProtocol, t.abort_text.empty() ? detail : t.abort_text);
        return;
      case CURLE_COULDNT_RESOLVE_HOST:
        set(HttpError::kResolve, "cannot resolve " + options.host + ": " + detail);
        return;
      case CURLE_COULDNT_RESOLVE_PROXY:
        set(HttpError::kResolve, "cannot resolve the proxy: " + detail);
        return;
      case CURLE_COULDNT_CONNECT:
        set(HttpError::kConnect, "cannot connect: " + detail);
        return;
      case CURLE_OPERATION_TIMEDOUT:
        if (t.head_out) {
          set(HttpError::kTimeout, "request timeout");
        } else {
          set(HttpError::kConnect, "connect timeout (" + detail + ")");
        }
        return;
      case CURLE_GOT_NOTHING:
        set(HttpError::kReset, "connection closed before a response");
        return;
      case CURLE_PARTIAL_FILE:
        set(HttpError::kReset, "connection closed mid-response: " + detail);
        return;
      case CURLE_SEND_ERROR:
      case CURLE_RECV_ERROR:
        set(HttpError::kReset, "connection reset: " + detail);
        return;
      case CURLE_PEER_FAILED_VERIFICATION: {
        // libcurl checks the name itself once the chain is good, and says so in its text
        // ("... does not match target host name ..."); the verify result is then no guide.
        if (detail.find("target host name") != std::string::npos) {
          set(HttpError::kTls, "TLS: the server's certificate is not for host " + options.host +
                                   " (" + detail + ")");
          return;
        }
        long verify = 0;
        curl_easy_getinfo(t.easy, CURLINFO_SSL_VERIFYRESULT, &verify);
        std::string text = VerifyText(verify, options.tls);
        if (text.empty()) text = "TLS: the server's certificate is not for host " + options.host;
        set(HttpError::kTls, std::move(text) + (verify == X509_V_OK ? " (" + detail + ")" : ""));
        return;
      }
      case CURLE_SSL_CACERT_BADFILE:
        set(HttpError::kTls, "TLS: cannot use tls.ca_file " + options.tls.ca_file + ": " + detail);
        return;
      case CURLE_SSL_CERTPROBLEM:
        set(HttpError::kTls, "TLS: cannot use the client certificate (tls.cert_file " +
                                 options.tls.cert_file + "): " + detail);
        return;
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_SSL_CIPHER:
      case CURLE_SSL_ISSUER_ERROR:
      case CURLE_SSL_SHUTDOWN_FAILED:
        set(HttpError::kTls, "TLS handshake failed: " + detail);
        return;
      case CURLE_WEIRD_SERVER_REPLY:
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_BAD_CONTENT_ENCODING:
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM:
        set(HttpError::kProtocol, "malformed response: " + detail);
        return;
      default:
        set(HttpError::kReset, detail);
        return;
    }
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
    std::vector<std::unique_ptr<Transfer>> cancelled = std::move(transfers);
    transfers.clear();
    for (auto& t : cancelled) {
      curl_multi_remove_handle(multi, t->easy);
      Complete(std::move(t->pending->callback),
               {HttpError::kCancelled, "client closed", t->request_sent(), {}});
    }
    cancelled.clear();  // the easy handles go before the multi handle
    if (multi != nullptr) {
      // Closes the cached connections; libcurl may report their sockets removed meanwhile
      // (`multi` is already null then, so nothing re-enters it).
      CURLM* m = multi;
      multi = nullptr;
      curl_multi_cleanup(m);
      curl_share_cleanup(share);  // after every easy handle and connection that used it
      share = nullptr;
      while (!watches.empty()) CloseWatch(watches.back());
      uv_timer_stop(&curl_timer);
      uv_close(AsHandle(&curl_timer), [](uv_handle_t* h) {
        auto* self = static_cast<Impl*>(h->data);
        --self->open_handles;
        self->MaybeFinishClose();
      });
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

size_t HttpClient::in_flight() const { return impl_->transfers.size(); }

size_t HttpClient::queued() const { return impl_->queue.size(); }

}  // namespace roundhouse::jenkins
