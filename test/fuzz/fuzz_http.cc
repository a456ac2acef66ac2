// libFuzzer target for the HTTP parsers: arbitrary bytes go through ResponseParser and
// RequestParser, once in a single read and once cut in two, with small limits so that the limit
// paths are reached. Both drives must agree on the messages; nothing may crash.
//
// Input layout: byte 0 picks the limits and whether a HEAD response is expected, bytes 1-2
// (little-endian) pick the cut, the rest is the byte stream from the peer.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/http.h"

namespace roundhouse::protocol::http {
namespace {

void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_http invariant failed: %s\n", what);
    std::abort();
  }
}

HttpLimits PickLimits(uint8_t b) {
  HttpLimits l;
  if ((b & 1) != 0) {
    l.max_head_bytes = 64;
    l.max_headers = 3;
    l.max_body_bytes = 16;
  }
  return l;
}

// One message summary per kMessage, then the final result.
template <typename Parser, typename Summarise>
std::vector<std::string> Drive(Parser& p, const std::vector<std::string_view>& reads,
                               Summarise summarise, bool eof) {
  std::vector<std::string> out;
  ParseResult r = ParseResult::kNeedMore;
  for (std::string_view read : reads) {
    r = p.Feed(read);
    while (r == ParseResult::kMessage) {
      out.push_back(summarise(p.Take()));
      r = p.Feed({});
    }
    if (r == ParseResult::kError) break;
  }
  if (eof && r == ParseResult::kNeedMore) {
    if constexpr (requires { p.FinishEof(); }) {
      r = p.FinishEof();
      if (r == ParseResult::kMessage) out.push_back(summarise(p.Take()));
    }
  }
  out.push_back(r == ParseResult::kError ? "error" : "end");
  return out;
}

std::string SummariseResponse(const Response& r) {
  return std::to_string(r.status) + "|" + std::to_string(r.headers.size()) + "|" + r.body;
}

std::string SummariseRequest(const Request& r) {
  Require(r.Query().size() <= r.target.size(), "query inside target");
  return r.method + " " + r.target + "|" + std::to_string(r.headers.size()) + "|" + r.body + "|" +
         r.Path();
}

}  // namespace
}  // namespace roundhouse::protocol::http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace roundhouse::protocol::http;
  if (size < 3) return 0;
  const uint8_t mode = data[0];
  const size_t cut_at = static_cast<size_t>(data[1]) | (static_cast<size_t>(data[2]) << 8);
  const std::string_view stream(reinterpret_cast<const char*>(data + 3), size - 3);
  const size_t cut = stream.empty() ? 0 : cut_at % (stream.size() + 1);
  const std::vector<std::string_view> whole = {stream};
  const std::vector<std::string_view> split = {stream.substr(0, cut), stream.substr(cut)};
  const HttpLimits limits = PickLimits(mode);

  ResponseParser r1(limits);
  ResponseParser r2(limits);
  if ((mode & 2) != 0) {
    r1.ExpectHeadResponse();
    r2.ExpectHeadResponse();
  }
  Require(Drive(r1, whole, SummariseResponse, true) == Drive(r2, split, SummariseResponse, true),
          "responses differ between one read and two");

  RequestParser q1(limits);
  RequestParser q2(limits);
  Require(Drive(q1, whole, SummariseRequest, false) == Drive(q2, split, SummariseRequest, false),
          "requests differ between one read and two");
  std::string decoded;
  (void)PercentDecode(stream, &decoded, (mode & 4) != 0);
  (void)ParseQuery(stream);
  return 0;
}
