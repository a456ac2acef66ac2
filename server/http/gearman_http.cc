#include "server/http/gearman_http.h"

#include <algorithm>
#include <cassert>
#include <string_view>

#include "base/log.h"
#include "base/text.h"
#include "server/acl.h"
#include "server/net/stream.h"

namespace roundhouse::server::http {
namespace {

namespace ph = protocol::http;
using protocol::PacketType;

// Bytes a peer may send after its request while its job runs (gearmand reads one request per
// connection; more is a peer we stop listening to).
constexpr size_t kMaxStrayInput = 64 * 1024;
constexpr uint64_t kLingerMs = 2000;
constexpr uint64_t kSweepMs = 250;

uv_handle_t* AsHandle(void* h) { return static_cast<uv_handle_t*>(h); }

constexpr std::string_view kServer = "Server: roundhouse/" ROUNDHOUSE_VERSION "\r\n";

// gearmand's error reply: reason phrases in its spelling (upper case, '_' for spaces), no body.
std::string ErrorReply(int status) {
  std::string_view reason;
  switch (status) {
    case 404:
      reason = "NOT_FOUND";
      break;
    case 408:
      reason = "REQUEST_TIMEOUT";
      break;
    case 413:
      reason = "REQUEST_ENTITY_TOO_LARGE";
      break;
    case 431:
      reason = "REQUEST_HEADER_FIELDS_TOO_LARGE";
      break;
    case 502:
      reason = "BAD_GATEWAY";
      break;
    case 503:
      reason = "SERVICE_UNAVAILABLE";
      break;
    default:
      status = 400;
      reason = "BAD_REQUEST";
      break;
  }
  std::string out = "HTTP/1.0 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  out += kServer;
  out += "Content-Length: 0\r\n\r\n";
  return out;
}

// A 200 reply in gearmand's header order. `command` is omitted for HEAD (gearmand's HEAD reply
// has no X-Gearman-Command) and so is the body, whose length Content-Length still gives.
std::string OkReply(std::string_view handle, std::string_view command, std::string_view body,
                    bool head) {
  std::string out = "HTTP/1.0 200 OK\r\nX-Gearman-Job-Handle: ";
  out.append(handle);
  out += "\r\n";
  if (!head) {
    out += "X-Gearman-Command: ";
    out.append(command);
    out += "\r\n";
  }
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += kServer;
  out += "\r\n";
  if (!head) out.append(body);
  return out;
}

std::string_view CommandName(PacketType type) {
  switch (type) {
    case PacketType::kWorkComplete:
      return "WORK_COMPLETE";
    case PacketType::kWorkFail:
      return "WORK_FAIL";
    case PacketType::kWorkException:
      return "WORK_EXCEPTION";
    default:
      return "UNKNOWN";
  }
}

}  // namespace

class GearmanHttp::Conn final : public broker::Peer, private net::StreamHandler {
 public:
  enum class State { kReading, kWaiting, kWriting, kLingering, kAbandoned, kClosed };

  explicit Conn(GearmanHttp& server)
      : server_(server), stream_(server.loop_, *this), parser_(server.options_.limits) {}
  ~Conn() override { assert(!attached_ && counted_body_ == 0); }

  net::Stream& stream() { return stream_; }
  State state() const { return state_; }
  uint64_t since_ms() const { return since_ms_; }
  uint64_t write_deadline_ms() const { return write_deadline_ms_; }
  const std::string& address() const { return address_; }

  // Admission (per-address cap), then reading. Over the cap: 503 and close.
  void Start() {
    since_ms_ = uv_now(server_.loop_);
    bool loopback = false;
    address_ = stream_.PeerAddress(&loopback);
    if (address_.empty()) address_ = "?";
    identity_ = acl::IdentityOf(loopback, /*encrypted=*/false, {});
    fd_ = stream_.fd();
    uv_tcp_nodelay(stream_.tcp(), 1);
    // The reply's unsent bytes count in the memory budget as a Gearman client's do.
    stream_.set_queued_total(server_.budget_.unsent_output_total());
    size_t& count = server_.per_address_[address_];
    if (count >= server_.options_.max_connections_per_address) {
      if (count == 0) server_.per_address_.erase(address_);
      RH_LOG(kWarning, "http %s: over --http-max-connections-per-address (%zu), answering 503",
             address_.c_str(), server_.options_.max_connections_per_address);
      Reply(ErrorReply(503));
      return;
    }
    ++count;
    address_counted_ = true;
    server_.broker_.Attach(*this);
    attached_ = true;
    if (stream_.StartReading() != 0) Close();
  }

  // The sweep: the request did not arrive in time.
  void RequestTimedOut() {
    RH_LOG(kInfo, "http %s: request not complete within --http-request-timeout, answering 408",
           address_.c_str());
    Reply(ErrorReply(408));
  }

  // Detaches (outside any Broker call) and closes. Idempotent.
  void Close() {
    if (state_ == State::kClosed) return;
    Enter(State::kClosed);
    Uncount();
    DropBody();
    if (attached_) {
      attached_ = false;
      server_.broker_.Detach(*this);
    }
    stream_.Close();
  }

  // ---- broker::Peer (called inside Broker calls: write only, never close or re-enter)
  void SendNoop() override {}

  void SendWork(PacketType type, std::string_view payload) override {
    if (state_ != State::kWaiting) return;
    const size_t nul = payload.find('\0');
    const std::string_view handle = payload.substr(0, nul);
    const std::string_view data =
        nul == std::string_view::npos ? std::string_view() : payload.substr(nul + 1);
    switch (type) {
      case PacketType::kWorkData:
        // gearmand meant WORK_DATA chunks to lead the body (doc/protocol.md §5.4).
        if (body_.size() + data.size() > server_.options_.max_reply_bytes) {
          RH_LOG(kWarning, "http %s: job %.*s sent more than --max-pending-output, answering 502",
                 address_.c_str(), static_cast<int>(handle.size()), handle.data());
          Reply(ErrorReply(502));
          return;
        }
        if (Overflows(data.size())) return;
        body_.append(data);
        AccountBody();
        return;
      case PacketType::kWorkComplete:
      case PacketType::kWorkException:
        if (body_.size() + data.size() > server_.options_.max_reply_bytes) {
          Reply(ErrorReply(502));
          return;
        }
        if (Overflows(data.size())) return;
        body_.append(data);
        Reply(OkReply(handle, CommandName(type), body_, head_));
        return;
      case PacketType::kWorkFail:
        Reply(OkReply(handle, CommandName(type), {}, head_));
        return;
      default:  // WORK_STATUS, WORK_WARNING: not part of the reply (doc/protocol.md §5.4)
        return;
    }
  }

  void SubmitDone(uint64_t ticket, const broker::SubmitReply& reply) override {
    (void)ticket;
    if (state_ != State::kWaiting) return;
    AnswerSubmit(reply);
  }

  int Fd() const override { return fd_; }
  std::string_view Address() const override { return address_; }

 private:
  // The one place the state changes. Legal: kReading -> kWaiting | kWriting | kClosed;
  // kWaiting -> kWriting | kAbandoned | kClosed; kWriting -> kLingering | kAbandoned | kClosed;
  // kLingering -> kAbandoned | kClosed; kAbandoned -> kClosed.
  void Enter(State next) {
    [[maybe_unused]] const bool legal =
        (state_ == State::kReading &&
         (next == State::kWaiting || next == State::kWriting || next == State::kClosed)) ||
        (state_ == State::kWaiting &&
         (next == State::kWriting || next == State::kAbandoned || next == State::kClosed)) ||
        (state_ == State::kWriting &&
         (next == State::kLingering || next == State::kAbandoned || next == State::kClosed)) ||
        (state_ == State::kLingering && (next == State::kAbandoned || next == State::kClosed)) ||
        (state_ == State::kAbandoned && next == State::kClosed);
    assert(legal);
    state_ = next;
    since_ms_ = uv_now(server_.loop_);
  }

  // ---- net::StreamHandler
  void OnStreamRead(net::Stream& stream) override {
    net::InputBuffer& in = stream.input();
    const std::string_view bytes = in.Data();
    switch (state_) {
      case State::kReading: {
        // The parser keeps what it needs of a partial request (bounded by HttpLimits).
        const ph::ParseResult result = parser_.Feed(bytes);
        in.Consume(bytes.size());
        Handle(result);
        return;
      }
      case State::kWaiting:
        stray_input_ += bytes.size();
        in.Consume(bytes.size());
        if (stray_input_ > kMaxStrayInput) {
          RH_LOG(kInfo, "http %s: more than %zu bytes after the request, closing", address_.c_str(),
                 kMaxStrayInput);
          Close();
        }
        return;
      case State::kWriting:
      case State::kLingering:
      case State::kAbandoned:
      case State::kClosed:
        in.Consume(bytes.size());  // discarded
        return;
    }
  }

  void OnStreamEof(net::Stream& stream) override {
    (void)stream;
    // The peer is gone, whatever the state (gearmand closes too, even on a half-close after a
    // complete request). A waiting job loses its client (§3.10).
    Close();
  }

  void OnStreamError(net::Stream& stream, int status) override {
    (void)stream;
    RH_LOG(kDebug, "http %s: socket error: %s", address_.c_str(), uv_strerror(status));
    Close();
  }

  void OnStreamDrained(net::Stream& stream) override {
    (void)stream;
    if (state_ == State::kWriting) Linger();
  }

  void OnStreamClosed(net::Stream& stream) override {
    (void)stream;
    server_.Closed(*this);
  }

  void Handle(ph::ParseResult result) {
    if (result == ph::ParseResult::kNeedMore) return;
    if (result == ph::ParseResult::kError) {
      const int status = parser_.error_status();
      RH_LOG(kInfo, "http %s: bad request: %s", address_.c_str(), parser_.error().c_str());
      // Over a limit: say so. Malformed: close without a reply, as gearmand does.
      if (status == 413 || status == 431) {
        Reply(ErrorReply(status));
      } else {
        Close();
      }
      return;
    }
    const ph::Request request = parser_.Take();
    Submit(request);
  }

  void Submit(const ph::Request& request) {
    const std::string& method = request.method;
    const bool body_is_data = method == "POST" || method == "PUT";
    head_ = method == "HEAD";
    if (!body_is_data && !head_ && method != "GET") {
      // gearmand closes without a reply on any other method (TRACE: it never replies).
      RH_LOG(kInfo, "http %s: method %s not served, closing", address_.c_str(), method.c_str());
      Close();
      return;
    }
    std::string_view function = request.target;
    while (!function.empty() && function.front() == '/') function.remove_prefix(1);
    if (function.empty()) {
      // gearmand answers HEAD / 200 (an echo, with a stale handle), the others 404.
      Reply(head_ ? OkReply({}, {}, {}, true) : ErrorReply(404));
      return;
    }
    broker::SubmitRequest submit;
    submit.function = function;
    submit.unique = "-";  // gearmand's default: coalesce on the data
    submit.data = body_is_data ? std::string_view(request.body) : std::string_view();
    bool found = false;
    const std::string_view unique = request.Get("X-Gearman-Unique", &found);
    if (found && !unique.empty()) submit.unique = unique;
    submit.background = EqualsIgnoreCase(request.Get("X-Gearman-Background"), "true");
    const std::string_view priority = request.Get("X-Gearman-Priority");
    if (EqualsIgnoreCase(priority, "high")) submit.priority = broker::Priority::kHigh;
    if (EqualsIgnoreCase(priority, "low")) submit.priority = broker::Priority::kLow;
    background_ = submit.background;
    // Access control (doc/acl.md) as for SUBMIT_*: the ERROR's code where the handle goes.
    if (server_.access_ != nullptr &&
        !server_.access_->Check(identity_, address_, acl::Kind::kSubmit, function)) {
      Reply(OkReply("INVALID_FUNCTION_NAME", "ERROR", {}, head_));
      return;
    }
    if (submit.unique.size() > server_.options_.max_unique) {
      Reply(OkReply("ARGUMENT_TOO_LARGE", "ERROR", {}, head_));
      return;
    }
    // The memory budget (--max-memory) as for SUBMIT_*: QUEUE_ERROR, nothing created.
    if (server_.budget_.RefuseForMemory(submit.function.size() + submit.unique.size() +
                                        submit.data.size())) {
      Reply(OkReply("QUEUE_ERROR", "ERROR", {}, head_));
      return;
    }
    Enter(State::kWaiting);
    const broker::SubmitOutcome outcome = server_.broker_.Submit(*this, submit);
    if (!outcome.pending) AnswerSubmit(outcome.reply);
  }

  // The submit's reply: an error ends the request; JOB_CREATED ends a background one.
  void AnswerSubmit(const broker::SubmitReply& reply) {
    if (!reply.ok) {
      // gearmand passes the ERROR packet on: its code where the handle goes.
      Reply(OkReply(reply.error_code, "ERROR", {}, head_));
    } else if (background_) {
      Reply(OkReply(reply.handle, "JOB_CREATED", {}, head_));
    }
  }

  // Writes the final reply (safe inside Broker calls: a failure is left to the reaper).
  void Reply(std::string bytes) {
    if (state_ != State::kReading && state_ != State::kWaiting) return;
    Enter(State::kWriting);
    stream_.StopReading();
    DropBody();
    write_deadline_ms_ =
        since_ms_ + server_.options_.write_timeout_ms + 1000 * (bytes.size() >> 20);
    if (!stream_.Write(&bytes)) {
      Abandon();
      return;
    }
    if (!stream_.write_in_flight()) Linger();  // the socket took it all at once
  }

  // Past --max-output-queue with `more` bytes: the peer is closed as if it had left (§3.10, as
  // a Gearman client whose output overflows), counted and logged by the server. One reply part
  // to an empty queue always fits, as on the Gearman port.
  bool Overflows(size_t more) {
    const size_t pending = body_.size() + stream_.queued_bytes();
    if (pending == 0 || pending + more <= server_.options_.max_output_queue) return false;
    server_.budget_.OutputOverflowed(*this);
    Abandon();
    return true;
  }

  // Failed inside a Broker call: stop everything now, close from the reaper right after.
  void Abandon() {
    Enter(State::kAbandoned);
    stream_.StopReading();
    DropBody();
    server_.Reap(*this);
  }

  // Keeps body_'s share of the server's unsent output equal to its size.
  void AccountBody() {
    size_t* total = server_.budget_.unsent_output_total();
    if (total == nullptr) return;
    *total = *total - counted_body_ + body_.size();
    counted_body_ = body_.size();
  }

  // Frees the collected WORK_DATA (it became the reply, or will never be sent).
  void DropBody() {
    body_.clear();
    body_.shrink_to_fit();
    AccountBody();
  }

  // The connection no longer counts against its address's cap. Idempotent.
  void Uncount() {
    if (!address_counted_) return;
    address_counted_ = false;
    auto it = server_.per_address_.find(address_);
    if (it != server_.per_address_.end() && --it->second == 0) server_.per_address_.erase(it);
  }

  // After the reply: half-close and discard input until the peer's EOF (or kLingerMs). A
  // lingering connection has had its answer, so it no longer counts against its address. May
  // run inside a Broker call (a reply written at once), so a failure goes to the reaper.
  void Linger() {
    Enter(State::kLingering);
    Uncount();
    stream_.Shutdown();
    if (stream_.StartReading() != 0) Abandon();
  }

  GearmanHttp& server_;
  net::Stream stream_;
  ph::RequestParser parser_;
  std::string body_;         // WORK_DATA received so far (kWaiting, foreground)
  size_t counted_body_ = 0;  // body_'s bytes counted in the server's unsent output
  std::string address_;
  std::string identity_;  // access control (plain HTTP: loopback-plain or plain)
  int fd_ = -1;
  State state_ = State::kReading;
  uint64_t since_ms_ = 0;           // when the current state was entered (loop time)
  uint64_t write_deadline_ms_ = 0;  // kWriting
  size_t stray_input_ = 0;          // bytes read in kWaiting
  bool head_ = false;               // HEAD: the reply has no body and no X-Gearman-Command
  bool background_ = false;         // X-Gearman-Background: true
  bool attached_ = false;           // Attach()ed to the broker; undone by Close
  bool address_counted_ = false;    // counted in per_address_; undone by Uncount
};

GearmanHttp::GearmanHttp(uv_loop_t* loop, GearmanHttpOptions options, broker::Broker& broker,
                         AccessControl* access, MemoryBudget& budget)
    : loop_(loop),
      options_(std::move(options)),
      broker_(broker),
      access_(access),
      budget_(budget) {}

GearmanHttp::~GearmanHttp() = default;

Status GearmanHttp::Start() {
  ListenOptions listen;
  listen.addresses = options_.addresses;
  listen.port = options_.port;
  listen.backlog = options_.backlog;
  listen.accept_errors = options_.accept_errors;
  Status s = conns_.Listen(loop_, listen, "--http-port", [this](Listener& l) { OnAccept(l); });
  if (!s.ok()) return s;
  uv_timer_init(loop_, &sweep_);
  sweep_.data = this;
  uv_idle_init(loop_, &reaper_);
  reaper_.data = this;
  handles_open_ = true;
  uv_timer_start(&sweep_, OnSweep, kSweepMs, kSweepMs);
  uv_unref(AsHandle(&sweep_));
  RH_LOG(kNotice, "gearmand HTTP protocol on %s", conns_.name().c_str());
  return Status::Ok();
}

void GearmanHttp::CloseListeners() { conns_.CloseListeners(); }

void GearmanHttp::Close() {
  if (closed_) return;
  closed_ = true;
  CloseListeners();
  if (handles_open_) {
    handles_open_ = false;
    uv_close(AsHandle(&sweep_), nullptr);
    uv_close(AsHandle(&reaper_), nullptr);
  }
  to_reap_.clear();
  conns_.CloseConnections();
}

void GearmanHttp::OnAccept(Listener& listener) {
  if (Conn* conn = conns_.Accept(listener, std::make_unique<Conn>(*this))) conn->Start();
}

void GearmanHttp::Closed(Conn& conn) {
  to_reap_.erase(std::remove(to_reap_.begin(), to_reap_.end(), &conn), to_reap_.end());
  conns_.Free(conn);
}

void GearmanHttp::Reap(Conn& conn) {
  if (!handles_open_) return;
  if (to_reap_.empty()) uv_idle_start(&reaper_, OnReap);
  to_reap_.push_back(&conn);
}

void GearmanHttp::OnReap(uv_idle_t* idle) {
  auto* self = static_cast<GearmanHttp*>(idle->data);
  uv_idle_stop(idle);
  const std::vector<Conn*> reap = std::move(self->to_reap_);
  self->to_reap_.clear();
  for (Conn* conn : reap) conn->Close();
}

void GearmanHttp::OnSweep(uv_timer_t* timer) {
  auto* self = static_cast<GearmanHttp*>(timer->data);
  const uint64_t now = uv_now(self->loop_);
  std::vector<Conn*> late_requests;
  std::vector<Conn*> to_close;
  self->conns_.ForEach([&](Conn& conn) {
    switch (conn.state()) {
      case Conn::State::kReading:
        if (now - conn.since_ms() >= self->options_.request_timeout_ms) {
          late_requests.push_back(&conn);
        }
        break;
      case Conn::State::kWriting:
        if (now >= conn.write_deadline_ms()) {
          RH_LOG(kInfo, "http %s: reply not read in time, closing", conn.address().c_str());
          to_close.push_back(&conn);
        }
        break;
      case Conn::State::kLingering:
        if (now - conn.since_ms() >= kLingerMs) to_close.push_back(&conn);
        break;
      case Conn::State::kWaiting:
      case Conn::State::kAbandoned:
      case Conn::State::kClosed:
        break;
    }
  });
  for (Conn* conn : late_requests) conn->RequestTimedOut();
  for (Conn* conn : to_close) conn->Close();
}

}  // namespace roundhouse::server::http
