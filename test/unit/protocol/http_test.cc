// HTTP/1.1 framing over http-parser: every way a body is delimited, arbitrary splits, pipelining,
// the HttpLimits bounds at the limit and one past, malformed input, and the encoders.
#include "protocol/http.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace roundhouse::protocol::http {
namespace {

// Feeds `bytes` in pieces of `step` bytes; collects every complete response.
std::vector<Response> FeedResponses(ResponseParser& p, const std::string& bytes, size_t step,
                                    ParseResult* last = nullptr) {
  std::vector<Response> out;
  ParseResult r = ParseResult::kNeedMore;
  for (size_t i = 0; i < bytes.size() && r != ParseResult::kError; i += step) {
    r = p.Feed(std::string_view(bytes).substr(i, step));
    while (r == ParseResult::kMessage) {
      out.push_back(p.Take());
      r = p.Feed({});
    }
  }
  if (last != nullptr) *last = r;
  return out;
}

std::vector<Request> FeedRequests(RequestParser& p, const std::string& bytes, size_t step,
                                  ParseResult* last = nullptr) {
  std::vector<Request> out;
  ParseResult r = ParseResult::kNeedMore;
  for (size_t i = 0; i < bytes.size() && r != ParseResult::kError; i += step) {
    r = p.Feed(std::string_view(bytes).substr(i, step));
    while (r == ParseResult::kMessage) {
      out.push_back(p.Take());
      r = p.Feed({});
    }
  }
  if (last != nullptr) *last = r;
  return out;
}

Response OneResponse(const std::string& bytes) {
  ResponseParser p;
  ParseResult last;
  auto all = FeedResponses(p, bytes, bytes.size(), &last);
  REQUIRE(all.size() == 1);
  return all[0];
}

const std::string kChunked =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A:  padded  \r\n\r\n"
    "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer-X: t\r\n\r\n";

}  // namespace

TEST_CASE("response with Content-Length is framed and headers are trimmed", "[http]") {
  Response r = OneResponse(
      "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nLocation:   http://h/queue/item/5/ \r\n"
      "Set-Cookie: a=1\r\nset-cookie: b=2\r\n\r\nhello");
  CHECK(r.status == 201);
  CHECK(r.reason == "Created");
  CHECK(r.body == "hello");
  CHECK(r.keep_alive);
  CHECK(r.Get("location") == "http://h/queue/item/5/");
  bool found = true;
  CHECK(r.Get("X-Missing", &found).empty());
  CHECK_FALSE(found);
  CHECK(r.GetAll("Set-Cookie") == std::vector<std::string_view>{"a=1", "b=2"});
}

TEST_CASE("chunked response with extensions and trailers is de-chunked", "[http]") {
  Response r = OneResponse(kChunked);
  CHECK(r.body == "hello, world");
  CHECK(r.Get("X-A") == "padded");
}

TEST_CASE("response split at every byte gives the same message", "[http]") {
  for (size_t step : {1, 2, 3, 7}) {
    ResponseParser p;
    auto all = FeedResponses(p, kChunked, step);
    REQUIRE(all.size() == 1);
    CHECK(all[0].body == "hello, world");
  }
  const std::string cl = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
  for (size_t cut = 0; cut <= cl.size(); ++cut) {
    ResponseParser p;
    ParseResult a = p.Feed(cl.substr(0, cut));
    if (cut < cl.size()) CHECK(a == ParseResult::kNeedMore);
    ParseResult b = cut < cl.size() ? p.Feed(cl.substr(cut)) : a;
    REQUIRE(b == ParseResult::kMessage);
    CHECK(p.Take().body == "abc");
  }
}

TEST_CASE("pipelined responses are framed one at a time", "[http]") {
  const std::string two = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA" + kChunked +
                          "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  for (size_t step : {size_t{1}, size_t{5}, two.size()}) {
    ResponseParser p;
    auto all = FeedResponses(p, two, step);
    REQUIRE(all.size() == 3);
    CHECK(all[0].body == "A");
    CHECK(all[1].body == "hello, world");
    CHECK(all[2].status == 404);
    CHECK(all[2].body.empty());
  }
}

TEST_CASE("read-until-close body completes at EOF", "[http]") {
  ResponseParser p;
  CHECK(p.Feed("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one") ==
        ParseResult::kNeedMore);
  CHECK(p.Feed(", two") == ParseResult::kNeedMore);
  REQUIRE(p.FinishEof() == ParseResult::kMessage);
  Response r = p.Take();
  CHECK(r.body == "part one, two");
  CHECK_FALSE(r.keep_alive);
}

TEST_CASE("EOF before a complete response is an error; EOF between messages is not", "[http]") {
  ResponseParser p;
  CHECK(p.FinishEof() == ParseResult::kNeedMore);
  CHECK(p.Feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") == ParseResult::kNeedMore);
  CHECK(p.FinishEof() == ParseResult::kError);
  CHECK(p.error() == "connection closed before the response was complete");
  ResponseParser q;
  CHECK(q.Feed("HTTP/1.1 200 OK\r\nContent-Le") == ParseResult::kNeedMore);
  CHECK(q.FinishEof() == ParseResult::kError);
}

TEST_CASE("HEAD response has no body whatever Content-Length says", "[http]") {
  ResponseParser p;
  p.ExpectHeadResponse();
  REQUIRE(p.Feed("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n") == ParseResult::kMessage);
  Response r = p.Take();
  CHECK(r.body.empty());
  CHECK(r.keep_alive);
  // Only for that one response.
  REQUIRE(p.Feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") == ParseResult::kMessage);
  CHECK(p.Take().body == "ok");
}

TEST_CASE("204 and 304 responses have no body", "[http]") {
  ResponseParser p;
  auto all = FeedResponses(p,
                           "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n"
                           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
                           1);
  REQUIRE(all.size() == 3);
  CHECK(all[0].status == 204);
  CHECK(all[1].status == 304);
  CHECK(all[2].body == "x");
}

TEST_CASE("100 Continue before the real response is skipped", "[http]") {
  Response r = OneResponse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  CHECK(r.status == 200);
}

TEST_CASE("Connection: close and HTTP/1.0 responses are not keep-alive", "[http]") {
  CHECK_FALSE(OneResponse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                  .keep_alive);
  CHECK_FALSE(OneResponse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
  CHECK(OneResponse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
            .keep_alive);
}

TEST_CASE("response body at the limit is accepted and one byte over is refused", "[http]") {
  HttpLimits limits;
  limits.max_body_bytes = 10;
  {
    ResponseParser p(limits);
    CHECK(p.Feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789") ==
          ParseResult::kMessage);
  }
  {
    ResponseParser p(limits);
    CHECK(p.Feed("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n") == ParseResult::kError);
    CHECK(p.error() == "body over the size limit");
    CHECK(p.Feed("more") == ParseResult::kError);  // unusable after an error
  }
  {
    ResponseParser p(limits);
    CHECK(p.Feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n"
                  "0\r\n\r\n") == ParseResult::kMessage);
  }
  {
    ResponseParser p(limits);
    CHECK(p.Feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n6\r\n"
                  "567890\r\n0\r\n\r\n") == ParseResult::kError);
  }
  {
    ResponseParser p(limits);
    CHECK(p.Feed("HTTP/1.1 200 OK\r\n\r\n0123456789") == ParseResult::kNeedMore);
    CHECK(p.Feed("x") == ParseResult::kError);
  }
}

TEST_CASE("head at the byte limit is accepted and one byte over is refused", "[http]") {
  const std::string head = "HTTP/1.1 200 OK\r\nX-Pad: abcdef\r\nContent-Length: 0\r\n\r\n";
  HttpLimits limits;
  limits.max_head_bytes = head.size();
  for (size_t step : {size_t{1}, head.size()}) {
    ResponseParser p(limits);
    ParseResult last;
    auto all = FeedResponses(p, head + head, step, &last);
    CHECK(all.size() == 2);
    CHECK(last == ParseResult::kNeedMore);
  }
  limits.max_head_bytes = head.size() - 1;
  for (size_t step : {size_t{1}, head.size()}) {
    ResponseParser p(limits);
    ParseResult last;
    auto all = FeedResponses(p, head, step, &last);
    CHECK(all.empty());
    CHECK(last == ParseResult::kError);
    CHECK(p.error() == "head over the size limit");
  }
}

TEST_CASE("header count at the limit is accepted and one over is refused", "[http]") {
  HttpLimits limits;
  limits.max_headers = 3;
  RequestParser ok(limits);
  CHECK(ok.Feed("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n") == ParseResult::kMessage);
  RequestParser over(limits);
  CHECK(over.Feed("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n") ==
        ParseResult::kError);
  CHECK(over.error_status() == 431);
}

TEST_CASE("malformed responses are errors, never crashes", "[http]") {
  for (const char* bad : {"HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\n: empty\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                          "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", "\x01\x02garbage"}) {
    ResponseParser p;
    CHECK(p.Feed(bad) == ParseResult::kError);
    CHECK_FALSE(p.error().empty());
  }
}

TEST_CASE("requests: methods, targets, bodies and pipelining", "[http]") {
  const std::string bytes =
      "GET /api/jobs?function=a%20b&limit=5#frag HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /submit HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
      "PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
      "GET /last HTTP/1.1\r\nConnection: close\r\n\r\n";
  for (size_t step : {size_t{1}, size_t{4}, bytes.size()}) {
    RequestParser p;
    auto all = FeedRequests(p, bytes, step);
    REQUIRE(all.size() == 4);
    CHECK(all[0].method == "GET");
    CHECK(all[0].target == "/api/jobs?function=a%20b&limit=5#frag");
    CHECK(all[0].Path() == "/api/jobs");
    CHECK(all[0].Query() == "function=a%20b&limit=5");
    CHECK(all[0].keep_alive);
    CHECK(all[1].method == "POST");
    CHECK(all[1].body == "abc");
    CHECK(all[2].body == "hi");
    CHECK_FALSE(all[3].keep_alive);
  }
}

TEST_CASE("request Path decodes and refuses non-origin targets", "[http]") {
  Request r;
  r.target = "/a%2Fb/c%20d?x=1";
  CHECK(r.Path() == "/a/b/c d");
  CHECK(r.Query() == "x=1");
  r.target = "/bad%zz";
  CHECK(r.Path().empty());
  r.target = "http://h/x";
  CHECK(r.Path().empty());
  r.target = "*";
  CHECK(r.Path().empty());
  CHECK(r.Query().empty());
  r.target = "/plain";
  CHECK(r.Query().empty());
  CHECK(r.Path() == "/plain");
}

TEST_CASE("request errors carry the status to answer", "[http]") {
  struct Case {
    std::string bytes;
    int status;
  };
  HttpLimits limits;
  limits.max_body_bytes = 4;
  limits.max_head_bytes = 200;
  for (const Case& c : std::vector<Case>{
           {"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 413},
           {"GET /" + std::string(300, 'a') + " HTTP/1.1\r\n\r\n", 431},
           {"GET / HTTP/2.0\r\n\r\n", 505},
           {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
           {"CONNECT h:80 HTTP/1.1\r\n\r\n", 501},
           {"G@T / HTTP/1.1\r\n\r\n", 400},
           {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
       }) {
    RequestParser p(limits);
    ParseResult last;
    FeedRequests(p, c.bytes, 1, &last);
    CHECK(last == ParseResult::kError);
    CHECK(p.error_status() == c.status);
    CHECK_FALSE(p.error().empty());
  }
  RequestParser at(limits);
  CHECK(at.Feed("POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd") == ParseResult::kMessage);
}

TEST_CASE("FormatRequest and FormatResponse produce parseable bytes", "[http]") {
  CHECK(FormatRequest("GET", "/x?y=1", "h:8080", {{"Accept", "*/*"}}, "") ==
        "GET /x?y=1 HTTP/1.1\r\nHost: h:8080\r\nAccept: */*\r\n\r\n");
  CHECK(FormatRequest("POST", "/p", "h", {}, "") ==
        "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  const std::string req = FormatRequest("POST", "/p", "h", {{"A", "b"}}, "body");
  RequestParser rp;
  REQUIRE(rp.Feed(req) == ParseResult::kMessage);
  CHECK(rp.Take().body == "body");

  CHECK(FormatResponse(404, {}, "nope", false) ==
        "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope");
  CHECK(FormatResponse(200, {{"X", "y"}}, "abc", true, true) ==
        "HTTP/1.1 200 OK\r\nX: y\r\nContent-Length: 3\r\n\r\n");
  Response r = OneResponse(FormatResponse(200, {{"X", "y"}}, "abc", true));
  CHECK(r.body == "abc");
  CHECK(ReasonPhrase(431) == "Request Header Fields Too Large");
  CHECK(ReasonPhrase(299) == "Unknown");
}

TEST_CASE("percent and form encoders handle reserved bytes and UTF-8", "[http]") {
  CHECK(PercentEncodePathSegment("a b/c") == "a%20b%2Fc");
  CHECK(PercentEncodePathSegment("AZaz09-._~") == "AZaz09-._~");
  CHECK(PercentEncodePathSegment("d\xC3\xA9j\xC3\xA0") == "d%C3%A9j%C3%A0");
  CHECK(FormEncodeComponent("a b&c=d+e") == "a+b%26c%3Dd%2Be");
  CHECK(FormEncode({{"json", "{\"x\":1}"}, {"NODE", "n 1"}, {"e", ""}}) ==
        "json=%7B%22x%22%3A1%7D&NODE=n+1&e=");
  CHECK(FormEncode({}).empty());

  std::string out;
  CHECK(PercentDecode("a+b%20c%C3%A9", &out, true));
  CHECK(out == "a b c\xC3\xA9");
  CHECK(PercentDecode("a+b", &out, false));
  CHECK(out == "a+b");
  CHECK_FALSE(PercentDecode("%", &out, false));
  CHECK_FALSE(PercentDecode("%4", &out, false));
  CHECK_FALSE(PercentDecode("%g0", &out, false));

  auto q = ParseQuery("function=a%20b&limit=5&&flag&bad=%zz&=x&x+y=1+2");
  REQUIRE(q.size() == 4);
  CHECK(q[0] == std::pair<std::string, std::string>{"function", "a b"});
  CHECK(q[1] == std::pair<std::string, std::string>{"limit", "5"});
  CHECK(q[2] == std::pair<std::string, std::string>{"flag", ""});
  CHECK(q[3] == std::pair<std::string, std::string>{"x y", "1 2"});
}

TEST_CASE("Base64 matches the RFC 4648 test vectors", "[http]") {
  CHECK(Base64Encode("").empty());
  CHECK(Base64Encode("f") == "Zg==");
  CHECK(Base64Encode("fo") == "Zm8=");
  CHECK(Base64Encode("foo") == "Zm9v");
  CHECK(Base64Encode("foob") == "Zm9vYg==");
  CHECK(Base64Encode("fooba") == "Zm9vYmE=");
  CHECK(Base64Encode("foobar") == "Zm9vYmFy");
  CHECK(Base64Encode("Aladdin:open sesame") == "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  CHECK(Base64Encode(std::string("\xff\xfe\x00", 3)) == "//4A");
}

}  // namespace roundhouse::protocol::http
