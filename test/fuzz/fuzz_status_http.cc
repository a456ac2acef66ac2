// libFuzzer target for the HTTP status port's request path: peer bytes go through the request
// parser (with the status port's limits) and every complete request through
// StatusServer::Route() against a broker that holds a function, a worker and jobs whose names
// and data also come from the input. Every reply must be a known status; every JSON reply must
// parse (RapidJSON, UTF-8 validated); no metric line may be broken by a name.
//
// Input layout: bytes up to the first '\n' name a function (registered by a worker, with one
// queued job whose unique and data are the same bytes); the rest is the peer's byte stream.
// The harness is instrumented; the server library it links is not (coverage reaches the harness
// and the parser through protocol/http.cc's inlined paths only as far as the build allows).
#include <rapidjson/document.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "base/clock.h"
#include "protocol/http.h"
#include "server/broker/broker.h"
#include "server/broker/peer.h"
#include "server/http/status_server.h"
#include "server/reply_producer.h"

namespace roundhouse::server::http {
namespace {

void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_status_http invariant failed: %s\n", what);
    std::abort();
  }
}

class FuzzPeer final : public broker::Peer {
 public:
  explicit FuzzPeer(int fd) : fd_(fd) {}
  void SendNoop() override {}
  void SendWork(protocol::PacketType, std::string_view) override {}
  void SubmitDone(uint64_t, const broker::SubmitReply&) override {}
  int Fd() const override { return fd_; }
  std::string_view Address() const override { return "127.0.0.1"; }

 private:
  int fd_;
};

void CheckReply(Reply reply) {
  const int s = reply.status;
  Require(s == 200 || s == 400 || s == 404 || s == 405, "known status");
  std::string body = std::move(reply.body);
  if (reply.producer != nullptr) {
    // A streamed document (doc/protocol.md §4.5): the body is every slice, as the connection
    // would send them one loop turn after another.
    body.clear();
    int slices = 0;
    while (!reply.producer->Produce(&body, kReplySliceBytes)) {
      Require(++slices < 1000000, "a streamed reply ends");
    }
  }
  if (reply.content_type.rfind("application/json", 0) == 0) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(body.data(),
                                                                                      body.size());
    Require(!doc.HasParseError(), "JSON reply parses as valid UTF-8 JSON");
  }
  if (s == 200 && body.rfind("# HELP ", 0) == 0) {
    // The Prometheus text: a name that broke a line would start one with its own bytes.
    size_t start = 0;
    while (start < body.size()) {
      size_t end = body.find('\n', start);
      if (end == std::string::npos) end = body.size();
      const std::string_view line(body.data() + start, end - start);
      Require(line.empty() || line.front() == '#' || line.rfind("roundhouse_", 0) == 0,
              "every metric line is a comment or a roundhouse_ sample");
      start = end + 1;
    }
  }
}

void Run(std::string_view input) {
  const size_t nl = input.find('\n');
  const std::string_view name = nl == std::string_view::npos ? std::string_view() : input.substr(0, nl);
  const std::string_view stream = nl == std::string_view::npos ? input : input.substr(nl + 1);

  SystemClock clock;
  broker::Options options;
  options.handle_prefix = "H:fuzz";
  broker::Broker broker(options, clock, nullptr, [](int64_t) {});
  FuzzPeer worker(3);
  FuzzPeer client(4);
  broker.Attach(worker);
  broker.Attach(client);
  if (!name.empty()) {
    broker.CanDo(worker, name, 0);
    broker::SubmitRequest r;
    r.function = name;
    r.unique = name.substr(0, 64);
    r.data = name;
    r.background = true;
    (void)broker.Submit(client, r);
  }

  uv_loop_t* loop = uv_default_loop();
  StatusServerOptions so;
  StatusServer server(loop, so, clock, broker, [] { return ServerInfo{}; }, {});
  protocol::http::RequestParser parser(so.limits);
  protocol::http::ParseResult result = parser.Feed(stream);
  int requests = 0;
  while (result == protocol::http::ParseResult::kMessage && requests < 8) {
    CheckReply(server.Route(parser.Take()));
    ++requests;
    result = parser.Feed({});
  }
  if (result == protocol::http::ParseResult::kError) {
    const int s = parser.error_status();
    Require(s >= 400 && s < 600, "parser error status");
  }
  broker.Detach(worker);
  broker.Detach(client);
}

}  // namespace
}  // namespace roundhouse::server::http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  roundhouse::server::http::Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
