#include "server/http/status_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <string_view>
#include <utility>

#include "base/log.h"
#include "base/text.h"
#include "server/acl.h"
#include "server/http/api.h"
#include "server/http/assets.h"
#include "server/http/metrics.h"
#include "server/net/stream.h"

namespace roundhouse::server::http {
namespace {

namespace ph = protocol::http;

constexpr std::string_view kJson = "application/json; charset=utf-8";
// How long a connection that got its final response may take to close its side.
constexpr uint64_t kLingerMs = 2000;
// Responses up to this size (errors, 503s) are always sent: they cannot hold the budget long.
constexpr size_t kSmallResponse = 4096;
// LogLimited kinds.
enum LogKind : size_t {
  kLogRequestTimeout,
  kLogWriteTimeout,
  kLogOutputBudget,
  kLogPerAddress,
  kLogEvicted,
  kLogFull,
};

uv_handle_t* AsHandle(void* h) { return static_cast<uv_handle_t*>(h); }

Reply ErrorReply(int status, const std::string& message) {
  Reply r;
  r.status = status;
  r.content_type = std::string(kJson);
  r.body = ErrorJson(status, message);
  return r;
}

Reply JsonReply(std::string body) {
  Reply r;
  r.content_type = std::string(kJson);
  r.body = std::move(body);
  return r;
}

// Parses 1..kMaxJobsLimit; false otherwise.
bool ParseLimit(std::string_view text, size_t* out) {
  const std::optional<size_t> value = ParseDecimal<size_t>(text);
  if (!value || *value < 1 || *value > kMaxJobsLimit) return false;
  *out = *value;
  return true;
}

}  // namespace

// ---- one connection

class StatusServer::Conn final : private net::StreamHandler {
 public:
  explicit Conn(StatusServer& server)
      : server_(server), stream_(server.loop_, *this), parser_(server.options_.limits) {}
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  net::Stream& stream() { return stream_; }
  bool closing() const { return closing_; }
  bool lingering() const { return lingering_; }
  // A response is being written (reading is stopped until it is taken).
  bool writing() const { return stream_.write_in_flight(); }
  // A response is being written or streamed: the connection is being answered.
  bool answering() const { return writing() || producer_ != nullptr; }
  bool awaiting_request() const { return awaiting_request_; }
  uint64_t request_started_ms() const { return request_started_ms_; }
  uint64_t write_started_ms() const { return write_started_ms_; }
  uint64_t last_active_ms() const { return last_active_ms_; }
  const std::string& address() const { return address_; }
  void set_address_counted() { address_counted_ = true; }

  // Starts serving, or answers 503 and closes when StatusServer::Admit refuses it.
  void Start() {
    last_active_ms_ = uv_now(server_.loop_);
    // The first request must be complete within request_timeout_ms of the accept.
    awaiting_request_ = true;
    request_started_ms_ = last_active_ms_;
    address_ = stream_.PeerAddress(nullptr);
    uv_tcp_nodelay(stream_.tcp(), 1);
    if (!server_.Admit(*this, address_)) {
      awaiting_request_ = false;
      const std::string body = ErrorJson(503, "too many connections");
      Send(ph::FormatResponse(503, {{"Content-Type", std::string(kJson)}}, body, false), true);
      return;
    }
    ResumeReading();
  }

  // The sweep found the request incomplete past request_timeout_ms: 408, then close.
  void RequestTimedOut() {
    awaiting_request_ = false;
    stream_.StopReading();
    Send(ph::FormatResponse(408, {{"Content-Type", std::string(kJson)}},
                            ErrorJson(408, "request not complete in time"), false),
         true);
  }

  void Close() {
    if (closing_) return;
    closing_ = true;
    producer_.reset();  // a peer gone mid-response: the listing stops and frees what it held
    // The slot and the output budget are free from now on (the bytes in flight go once libuv
    // cancels the write, during the close).
    Uncount();
    if (address_counted_) {
      address_counted_ = false;
      auto it = server_.per_address_.find(address_);
      if (it != server_.per_address_.end() && --it->second == 0) server_.per_address_.erase(it);
    }
    stream_.Close();
  }

 private:
  // ---- net::StreamHandler
  void OnStreamRead(net::Stream& stream) override {
    net::InputBuffer& in = stream.input();
    if (lingering_) {  // after the final response: discard input until EOF
      in.Consume(in.size());
      return;
    }
    last_active_ms_ = uv_now(server_.loop_);
    if (!awaiting_request_) {  // the first byte of the next request starts its clock
      awaiting_request_ = true;
      request_started_ms_ = last_active_ms_;
    }
    // The parser keeps what it needs of a partial request (bounded by HttpLimits).
    const std::string_view data = in.Data();
    const ph::ParseResult result = parser_.Feed(data);
    in.Consume(data.size());
    Handle(result);
  }

  void OnStreamEof(net::Stream& stream) override {
    (void)stream;
    if (lingering_) {
      Close();
      return;
    }
    // Half-close: answer what was asked (a response may be in flight), then close.
    eof_ = true;
    if (!answering()) Close();
  }

  void OnStreamError(net::Stream& stream, int status) override {
    (void)stream;
    RH_LOG(kDebug, "http %s: socket error: %s", address_.c_str(), uv_strerror(status));
    Close();
  }

  void OnStreamDrained(net::Stream& stream) override {
    (void)stream;
    Uncount();
    if (producer_ != nullptr) {
      ContinueStream();
      return;
    }
    if (eof_) {
      Close();
      return;
    }
    if (close_after_write_) {
      Linger();
      return;
    }
    last_active_ms_ = uv_now(server_.loop_);
    Handle(parser_.Feed({}));  // a pipelined request may be buffered already
  }

  void OnStreamClosed(net::Stream& stream) override {
    (void)stream;
    server_.Closed(*this);
  }

  // Gives back this connection's share of the pending-output budget.
  void Uncount() {
    server_.pending_output_ -= counted_output_;
    counted_output_ = 0;
  }

  // Acts on one parse result; serves pipelined requests one at a time while writes complete
  // at once, and stops reading while a response is in flight.
  void Handle(ph::ParseResult result) {
    while (!closing_ && !answering()) {
      if (result == ph::ParseResult::kNeedMore) {
        if (eof_) {
          Close();
        } else {
          ResumeReading();
        }
        return;
      }
      if (result == ph::ParseResult::kError) {
        const int status = parser_.error_status();
        RH_LOG(kInfo, "http %s: bad request (%d): %s", address_.c_str(), status,
               parser_.error().c_str());
        Send(ph::FormatResponse(status, {{"Content-Type", std::string(kJson)}},
                                ErrorJson(status, parser_.error()), false),
             true);
        return;
      }
      const ph::Request request = parser_.Take();
      awaiting_request_ = false;
      // While the unsent output of all connections is at its budget, no new document is built:
      // a scraper that does not read cannot make us produce more for others that do not either.
      Reply reply = server_.pending_output_ >= server_.options_.max_pending_output_bytes
                        ? ErrorReply(503, "busy: too much unsent output, retry later")
                        : server_.Route(request);
      RH_LOG(kDebug, "http %s: %s %s -> %d", address_.c_str(), request.method.c_str(),
             request.target.c_str(), reply.status);
      const bool keep = request.keep_alive && !eof_;
      const bool head = request.method == "HEAD";
      std::vector<ph::Header> headers = std::move(reply.headers);
      headers.push_back({"Content-Type", reply.content_type});
      if (reply.producer != nullptr && !reply.producer->Produce(&reply.body, kReplySliceBytes)) {
        StartStream(std::move(reply.producer), reply.status, headers, reply.body, keep,
                    request.http_1_1, head);
      } else {  // a document that fits in one slice goes as any response, with its length
        Send(ph::FormatResponse(reply.status, headers, reply.body, keep, head), !keep);
      }
      if (closing_ || answering()) return;
      result = parser_.Feed({});
    }
  }

  // Writes `bytes`; what cannot be written now stays with the stream, and reading stops until
  // it is written (at most one response pending).
  void Send(std::string bytes, bool close_after) {
    // A response that could not wait in full under the pending-output budget is replaced by a
    // short 503 before any byte of it goes out (the caller's peer gets a clean answer).
    if (bytes.size() > kSmallResponse &&
        server_.pending_output_ + bytes.size() > server_.options_.max_pending_output_bytes) {
      ++server_.counters_.output_refusals;
      server_.LogLimited(kLogOutputBudget, "response not sent: unsent output over its budget",
                         address_);
      bytes = ph::FormatResponse(503, {{"Content-Type", std::string(kJson)}},
                                 ErrorJson(503, "busy: too much unsent output, retry later"),
                                 false);
      close_after = true;
      producer_.reset();  // the streamed document it would have started
    }
    close_after_write_ = close_after;
    if (!stream_.Write(&bytes)) {
      Close();
      return;
    }
    if (!stream_.write_in_flight()) {
      if (close_after) Linger();
      return;
    }
    stream_.StopReading();
    write_started_ms_ = uv_now(server_.loop_);
    counted_output_ = stream_.queued_bytes();
    server_.pending_output_ += counted_output_;
  }

  // Starts a streamed response whose first slice `first` did not end the document: the head
  // without a length (chunked for HTTP/1.1; for HTTP/1.0 the body ends with the connection),
  // then the slices as the output drains (ContinueStream). Reading stops until the end.
  void StartStream(std::unique_ptr<ReplyProducer> producer, int status,
                   const std::vector<ph::Header>& headers, const std::string& first, bool keep,
                   bool http_1_1, bool head) {
    chunked_ = http_1_1;
    stream_keep_ = keep && http_1_1;
    std::string bytes = "HTTP/1.1 " + std::to_string(status) + " ";
    bytes.append(ph::ReasonPhrase(status)).append("\r\n");
    for (const ph::Header& h : headers)
      bytes.append(h.name).append(": ").append(h.value).append("\r\n");
    if (chunked_) bytes.append("Transfer-Encoding: chunked\r\n");
    if (!stream_keep_) bytes.append("Connection: close\r\n");
    bytes.append("\r\n");
    if (head) {  // the headers of the document, which is not produced
      Send(std::move(bytes), !stream_keep_);
      return;
    }
    AppendBody(&bytes, first);
    producer_ = std::move(producer);
    stream_.StopReading();
    write_started_ms_ = uv_now(server_.loop_);  // the whole response within write_timeout_ms
    Send(std::move(bytes), false);
    if (!closing_ && producer_ != nullptr && !writing()) server_.ResumeNextTurn(*this);
  }

 public:
  // The next slice of a streamed response, once what was sent before has left; the last one
  // ends the response (a final chunk), then the connection goes on as after any response.
  void ContinueStream() {
    if (closing_ || producer_ == nullptr) return;
    if (stream_.queued_bytes() >= kReplySliceBytes) return;  // OnStreamDrained calls again
    std::string body;
    const bool done = producer_->Produce(&body, kReplySliceBytes);
    std::string bytes;
    AppendBody(&bytes, body);
    if (done) {
      producer_.reset();
      if (chunked_) bytes.append("0\r\n\r\n");
      close_after_write_ = !stream_keep_;
    }
    if (!bytes.empty() && !stream_.Write(&bytes)) {
      Close();
      return;
    }
    Uncount();
    counted_output_ = stream_.queued_bytes();
    server_.pending_output_ += counted_output_;
    if (writing()) return;  // OnStreamDrained continues or ends it
    if (!done) {
      server_.ResumeNextTurn(*this);
      return;
    }
    if (close_after_write_) {
      Linger();
    } else if (eof_) {
      Close();
    } else {
      last_active_ms_ = uv_now(server_.loop_);
      Handle(parser_.Feed({}));
    }
  }

 private:
  // A slice of a streamed body: one chunk (never an empty one, which would end the body), or
  // the bytes as they are without chunking.
  void AppendBody(std::string* bytes, std::string_view data) const {
    if (data.empty()) return;
    if (!chunked_) {
      bytes->append(data);
      return;
    }
    char size[20];
    const auto res = std::to_chars(size, size + sizeof(size), data.size(), 16);
    bytes->append(size, res.ptr).append("\r\n").append(data).append("\r\n");
  }

  // After a final response (Connection: close, an error, 503): half-close our side and drain
  // what the peer still sends until its EOF, so unread request bytes do not turn the close into
  // a reset that could destroy the response in flight. The sweep ends a peer that never closes.
  void Linger() {
    if (closing_ || lingering_) return;
    if (eof_) {  // the peer already closed its side
      Close();
      return;
    }
    lingering_ = true;
    last_active_ms_ = uv_now(server_.loop_);
    stream_.Shutdown();
    ResumeReading();
  }

  void ResumeReading() {
    if (closing_ || eof_) return;
    if (stream_.StartReading() != 0) Close();
  }

  StatusServer& server_;
  net::Stream stream_;
  ph::RequestParser parser_;
  // The document being streamed (StartStream); null when none.
  std::unique_ptr<ReplyProducer> producer_;
  bool chunked_ = false;      // the streamed body is chunked (HTTP/1.1)
  bool stream_keep_ = false;  // the connection stays open after the streamed response
  std::string address_;
  uint64_t last_active_ms_ = 0;
  // A request is being waited for (from the accept, or from the first byte after the previous
  // response) since request_started_ms_; cleared when it is complete.
  bool awaiting_request_ = false;
  uint64_t request_started_ms_ = 0;
  uint64_t write_started_ms_ = 0;   // while writing()
  size_t counted_output_ = 0;       // unsent bytes counted in pending_output_
  bool address_counted_ = false;    // counted in per_address_ (undone by Close)
  bool close_after_write_ = false;  // Connection: close, or an error response
  bool eof_ = false;                // the peer sent everything it will send
  bool lingering_ = false;          // final response sent; draining input until EOF
  bool closing_ = false;            // stream closed; freed in OnStreamClosed
};

// ---- the server

StatusServer::StatusServer(uv_loop_t* loop, StatusServerOptions options, const Clock& clock,
                           const broker::Broker& broker, std::function<ServerInfo()> info,
                           JenkinsProvider jenkins)
    : loop_(loop),
      options_(std::move(options)),
      clock_(clock),
      broker_(broker),
      info_(std::move(info)),
      jenkins_(std::move(jenkins)) {}

StatusServer::~StatusServer() = default;

Status StatusServer::Start() {
  ListenOptions listen;
  listen.addresses = {options_.address};
  listen.port = options_.port;
  listen.backlog = options_.backlog;
  listen.accept_errors = options_.accept_errors;
  Status s = conns_.Listen(loop_, listen, "--status-port", [this](Listener& l) { OnAccept(l); });
  if (!s.ok()) return s;
  uv_timer_init(loop_, &sweep_);
  sweep_.data = this;
  uv_idle_init(loop_, &resume_idle_);
  resume_idle_.data = this;
  sweep_open_ = true;
  const uint64_t shortest = std::min({options_.idle_timeout_ms, options_.request_timeout_ms,
                                      options_.write_timeout_ms});
  const uint64_t period = std::clamp<uint64_t>(shortest / 4, 20, 1000);
  uv_timer_start(&sweep_, OnSweep, period, period);
  uv_unref(AsHandle(&sweep_));
  RH_LOG(kNotice, "HTTP status API on http://%s/", conns_.name().c_str());
  return Status::Ok();
}

void StatusServer::Close() {
  if (closed_) return;
  closed_ = true;
  conns_.CloseListeners();
  if (sweep_open_) {
    sweep_open_ = false;
    uv_close(AsHandle(&sweep_), nullptr);
    uv_close(AsHandle(&resume_idle_), nullptr);
  }
  resume_.clear();
  conns_.CloseConnections();
}

void StatusServer::OnAccept(Listener& listener) {
  Conn* conn = conns_.Accept(listener, std::make_unique<Conn>(*this));
  if (conn == nullptr) return;
  if (tls_ != nullptr) conn->stream().OfferTls(tls_, /*require_tls=*/true);
  conn->Start();
}

bool StatusServer::Admit(Conn& conn, const std::string& address) {
  auto per = per_address_.find(address);
  if (per != per_address_.end() && per->second >= options_.max_connections_per_address) {
    ++counters_.per_address_refusals;
    LogLimited(kLogPerAddress, "over the per-address connection cap, answering 503", address);
    return false;
  }
  size_t live = 0;
  Conn* victim = nullptr;
  uint64_t victim_since = 0;
  conns_.ForEach([&](Conn& other) {
    if (&other == &conn || other.closing()) return;
    ++live;
    if (other.answering()) return;  // being answered: never evicted
    // Waiting for a request (trickling or not started) or idle between requests, or lingering
    // after its final response: the one waiting longest goes first.
    const uint64_t since =
        other.awaiting_request() ? other.request_started_ms() : other.last_active_ms();
    if (victim == nullptr || since < victim_since) {
      victim = &other;
      victim_since = since;
    }
  });
  if (live >= options_.max_connections) {
    if (victim == nullptr) {
      ++counters_.full_refusals;
      LogLimited(kLogFull, "every connection busy, answering 503", address);
      return false;
    }
    ++counters_.evictions;
    LogLimited(kLogEvicted, "at the connection cap: closed the connection waiting longest",
               victim->address());
    victim->Close();
  }
  ++per_address_[address];
  conn.set_address_counted();
  return true;
}

void StatusServer::LogLimited(size_t kind, const char* what, const std::string& address) {
  LogState& st = log_state_[kind];
  const uint64_t now = uv_now(loop_);
  if (st.last_ms != 0 && now - st.last_ms < 1000) {
    ++st.suppressed;
    return;
  }
  if (st.suppressed > 0) {
    RH_LOG(kWarning, "http %s: %s (and %llu more in the last second)", address.c_str(), what,
           static_cast<unsigned long long>(st.suppressed));
  } else {
    RH_LOG(kWarning, "http %s: %s", address.c_str(), what);
  }
  st.last_ms = now;
  st.suppressed = 0;
}

void StatusServer::Closed(Conn& conn) {
  resume_.erase(std::remove(resume_.begin(), resume_.end(), &conn), resume_.end());
  conns_.Free(conn);
}

void StatusServer::ResumeNextTurn(Conn& conn) {
  if (closed_) return;
  if (std::find(resume_.begin(), resume_.end(), &conn) != resume_.end()) return;
  resume_.push_back(&conn);
  uv_idle_start(&resume_idle_, OnResumeIdle);
}

void StatusServer::OnResumeIdle(uv_idle_t* handle) {
  auto* self = static_cast<StatusServer*>(handle->data);
  uv_idle_stop(handle);
  // Connections are freed only in their close callbacks (which erase them from resume_), so
  // every one listed is still allocated here.
  const std::vector<Conn*> due = std::exchange(self->resume_, {});
  for (Conn* conn : due) conn->ContinueStream();
}

void StatusServer::OnSweep(uv_timer_t* timer) {
  auto* self = static_cast<StatusServer*>(timer->data);
  const StatusServerOptions& o = self->options_;
  const uint64_t now = uv_now(self->loop_);
  std::vector<Conn*> idle;
  std::vector<Conn*> slow_writes;
  std::vector<Conn*> slow_requests;
  self->conns_.ForEach([&](Conn& conn) {
    if (conn.closing()) return;
    if (conn.lingering()) {
      if (now - conn.last_active_ms() >= kLingerMs) idle.push_back(&conn);
    } else if (conn.answering()) {
      if (now - conn.write_started_ms() >= o.write_timeout_ms) slow_writes.push_back(&conn);
    } else if (conn.awaiting_request()) {
      if (now - conn.request_started_ms() >= o.request_timeout_ms) slow_requests.push_back(&conn);
    } else if (now - conn.last_active_ms() >= o.idle_timeout_ms) {
      idle.push_back(&conn);
    }
  });
  for (Conn* conn : idle) {
    RH_LOG(kDebug, "http %s: idle, closing", conn->address().c_str());
    conn->Close();
  }
  for (Conn* conn : slow_writes) {
    ++self->counters_.write_timeouts;
    self->LogLimited(kLogWriteTimeout, "response not read in time, closing", conn->address());
    conn->Close();
  }
  for (Conn* conn : slow_requests) {
    ++self->counters_.request_timeouts;
    self->LogLimited(kLogRequestTimeout, "request not complete in time, answering 408",
                     conn->address());
    conn->RequestTimedOut();
  }
}

// ---- routing

Reply StatusServer::Route(const ph::Request& request) {
  const std::string path = request.Path();
  if (path.empty()) return ErrorReply(400, "bad request target");

  enum class Page { kAsset, kStatus, kWorkers, kJobs, kJenkins, kMetrics };
  Page page;
  const Asset* asset = nullptr;
  if (path == "/api/status") {
    page = Page::kStatus;
  } else if (path == "/api/workers") {
    page = Page::kWorkers;
  } else if (path == "/api/jobs") {
    page = Page::kJobs;
  } else if (path == "/api/jenkins") {
    page = Page::kJenkins;
  } else if (path == "/metrics") {
    page = Page::kMetrics;
  } else {
    for (const Asset& a : DashboardAssets()) {
      if (a.path == path) asset = &a;
    }
    page = Page::kAsset;
  }
  // The dashboard's files hold no data, so a browser can load them and then send the token;
  // everything else, unknown paths included, needs it.
  if (asset == nullptr && !options_.bearer_token.empty() &&
      !acl::BearerAuthorized(request.Get("Authorization"), options_.bearer_token)) {
    ++counters_.unauthorized;
    Reply r = ErrorReply(401, "a bearer token is required (Authorization: Bearer TOKEN)");
    r.headers.push_back({"WWW-Authenticate", "Bearer realm=\"roundhouse\""});
    return r;
  }
  if (page == Page::kAsset && asset == nullptr) return ErrorReply(404, "no such path: " + path);
  if (request.method != "GET" && request.method != "HEAD") {
    Reply r = ErrorReply(405, "method " + request.method + " not allowed; use GET or HEAD");
    r.headers.push_back({"Allow", "GET, HEAD"});
    return r;
  }

  std::string function;
  size_t limit = kDefaultJobsLimit;
  for (const auto& [name, value] : ph::ParseQuery(request.Query())) {
    if (page == Page::kJobs && name == "function") {
      function = value;
    } else if (page == Page::kJobs && name == "limit") {
      if (!ParseLimit(value, &limit)) {
        return ErrorReply(400, "limit must be an integer from 1 to " +
                                   std::to_string(kMaxJobsLimit) + ", not '" + value + "'");
      }
    } else {
      return ErrorReply(400, "unknown query parameter '" + name + "' for " + path);
    }
  }

  if (page == Page::kAsset) {
    Reply r;
    r.content_type = std::string(asset->content_type);
    r.body = std::string(asset->body);
    r.headers.push_back({"Cache-Control", "no-cache"});
    return r;
  }
  Reply reply;
  const std::vector<jenkins::MasterSummary> masters =
      jenkins_ && (page == Page::kJenkins || page == Page::kMetrics || page == Page::kStatus)
          ? jenkins_()
          : std::vector<jenkins::MasterSummary>{};
  switch (page) {
    // The documents that grow with functions, workers or jobs are streamed (see the header).
    case Page::kStatus:
      reply.content_type = std::string(kJson);
      reply.producer = StreamStatusJson(broker_, info_(), bool(jenkins_), masters.size());
      break;
    case Page::kWorkers:
      reply.content_type = std::string(kJson);
      reply.producer = StreamWorkersJson(broker_);
      break;
    case Page::kJobs:
      reply.content_type = std::string(kJson);
      reply.producer =
          StreamJobsJson(broker_, function, limit, clock_.MonotonicMs(), clock_.UnixSeconds());
      break;
    case Page::kJenkins:
      reply = JsonReply(JenkinsJson(bool(jenkins_), masters));
      break;
    case Page::kMetrics:
      reply.content_type = std::string(kMetricsContentType);
      reply.producer = StreamMetrics(broker_, options_.metrics_max_functions, info_(),
                                     broker_.WorkerPeers().size(), masters);
      break;
    case Page::kAsset:
      break;
  }
  reply.headers.push_back({"Cache-Control", "no-store"});
  return reply;
}

}  // namespace roundhouse::server::http
