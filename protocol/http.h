// HTTP/1.1 message framing: a thin layer over http-parser shared by the Jenkins REST client
// (responses) and the status endpoint (requests), plus the small encoders both need.
// Pure: no sockets, no clock, no logging. Bytes in, messages out.
//
// A parser is fed whatever arrived on the socket, in any split; it frames one message at a time
// (Content-Length, chunked, or — responses only — until the peer closes) and keeps bytes that
// follow a complete message (pipelining) for the next one. Every size is bounded by HttpLimits;
// anything over a bound or malformed is an error with a short reason, and the parser is then
// unusable (the connection must be closed).
//
// Thread-safety: none; one parser per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace roundhouse::protocol::http {

struct HttpLimits {
  size_t max_head_bytes = 64 * 1024;          // start line + all header lines
  size_t max_headers = 100;                   // header fields per message
  size_t max_body_bytes = 64 * 1024 * 1024;   // decoded body (a large R2 answer is a few MB)
};

struct Header {
  std::string name;  // as received
  std::string value;  // leading/trailing whitespace trimmed
};

struct Response {
  int status = 0;
  std::string reason;
  std::vector<Header> headers;
  std::string body;  // de-chunked
  bool keep_alive = false;  // the connection may carry another request (HTTP/1.1 default)

  // The first header with this name (case-insensitive), or empty with *found = false.
  std::string_view Get(std::string_view name, bool* found = nullptr) const;
  // Every value of a repeated header (e.g. Set-Cookie), in order.
  std::vector<std::string_view> GetAll(std::string_view name) const;
};

struct Request {
  std::string method;  // e.g. "GET"
  std::string target;  // request-target as received, e.g. "/api/jobs?function=a%20b&limit=5"
  std::vector<Header> headers;
  std::string body;
  bool keep_alive = false;
  // HTTP/1.1 (not 1.0): the response may use Transfer-Encoding: chunked.
  bool http_1_1 = true;

  std::string_view Get(std::string_view name, bool* found = nullptr) const;
  // `target` before '?', percent-decoded; empty if the target is not origin-form ("/...") or
  // its decoding is invalid.
  std::string Path() const;
  // The raw query (after '?', without '#...'), or empty.
  std::string_view Query() const;
};

enum class ParseResult {
  kNeedMore,  // no complete message yet
  kMessage,   // a message is complete: Take() it, then call Feed({}) again for pipelined bytes
  kError,     // malformed or over a limit: error() says why; close the connection
};

class ResponseParser {
 public:
  explicit ResponseParser(HttpLimits limits = {});
  ~ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // The next response answers a HEAD request (no body whatever the headers say).
  void ExpectHeadResponse();
  // Feeds bytes; they are consumed (buffered internally as needed).
  ParseResult Feed(std::string_view bytes);
  // The peer closed the connection: completes a read-until-close body (kMessage), or reports an
  // incomplete message (kError "connection closed before the response was complete"), or
  // kNeedMore when nothing of a new message had arrived.
  ParseResult FinishEof();
  // After kMessage: the response, moving it out. The parser is ready for the next response.
  Response Take();
  const std::string& error() const { return error_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string error_;
};

class RequestParser {
 public:
  explicit RequestParser(HttpLimits limits = {});
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  ParseResult Feed(std::string_view bytes);
  Request Take();
  const std::string& error() const { return error_; }
  // On kError: the status code to answer with before closing (400, 413 body too large,
  // 431 head too large, 501 unsupported transfer coding, 505 version).
  int error_status() const { return error_status_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string error_;
  int error_status_ = 400;
};

// ---- serialising

// "METHOD target HTTP/1.1\r\nHost: host\r\n" + headers + "Content-Length: n\r\n" (when the body
// is non-empty or the method is POST/PUT) + "\r\n" + body.
std::string FormatRequest(std::string_view method, std::string_view target, std::string_view host,
                          const std::vector<Header>& headers, std::string_view body);

// "HTTP/1.1 status reason\r\n" + headers + "Content-Length: n\r\n" + ("Connection: close\r\n"
// unless keep_alive) + "\r\n" + body (omitted for HEAD: pass head_only).
std::string FormatResponse(int status, const std::vector<Header>& headers, std::string_view body,
                           bool keep_alive, bool head_only = false);

// The standard reason phrase ("OK", "Not Found", ...); "Unknown" for others.
std::string_view ReasonPhrase(int status);

// ---- encoders

// RFC 3986 percent-encoding of one path segment (UTF-8 bytes; unreserved characters kept).
std::string PercentEncodePathSegment(std::string_view segment);
// application/x-www-form-urlencoded: name=value pairs joined with '&', space as '+'.
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& pairs);
// One form/query component, as FormEncode encodes it.
std::string FormEncodeComponent(std::string_view text);
// Decodes '%XX' (and '+' as space when `plus_is_space`); false on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out, bool plus_is_space);
// Splits a query string into decoded name/value pairs, in order; malformed pairs are skipped.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);
// Base64 (RFC 4648, with padding), for Basic auth.
std::string Base64Encode(std::string_view bytes);

}  // namespace roundhouse::protocol::http
