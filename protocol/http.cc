#include "protocol/http.h"

#include <http_parser.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "base/text.h"

namespace roundhouse::protocol::http {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' ||
                        s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string_view FindHeader(const std::vector<Header>& headers, std::string_view name,
                            bool* found) {
  for (const Header& h : headers) {
    if (EqualsIgnoreCase(h.name, name)) {
      if (found != nullptr) *found = true;
      return h.value;
    }
  }
  if (found != nullptr) *found = false;
  return {};
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 9110 tchar: http-parser (built non-strict) lets other bytes through in field names.
bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    std::strchr("!#$%&'*+-.^_`|~", ch) != nullptr;
    if (!ok || c == 0) return false;
  }
  return true;
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

void AppendEscape(std::string* out, unsigned char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->push_back('%');
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 0xF]);
}

// What the message under construction has collected. Shared by both parser kinds; the callbacks
// below fill it, and record the first limit violation in `error` (http-parser only learns that a
// callback failed, not why).
struct Builder {
  HttpLimits limits;
  bool is_request = false;
  bool head_response = false;  // ExpectHeadResponse() for the message being parsed
  bool headers_done = false;   // the head of the current message is complete
  bool in_value = false;       // the last header callback was for a value
  size_t head_bytes = 0;       // bytes of the current message's head seen so far
  std::string error;
  int error_status = 400;

  int status = 0;
  std::string reason;
  std::string method;
  std::string target;
  std::vector<Header> headers;
  std::string body;
  bool keep_alive = false;
  bool http_1_1 = true;

  void Reset() {
    headers_done = false;
    in_value = false;
    head_bytes = 0;
    status = 0;
    reason.clear();
    method.clear();
    target.clear();
    headers.clear();
    body.clear();
    keep_alive = false;
    http_1_1 = true;
  }

  int Fail(std::string why, int http_status) {
    if (error.empty()) {
      error = std::move(why);
      error_status = http_status;
    }
    return -1;
  }
};

Builder* Of(http_parser* p) { return static_cast<Builder*>(p->data); }

int OnUrl(http_parser* p, const char* at, size_t len) {
  Of(p)->target.append(at, len);
  return 0;
}

int OnStatus(http_parser* p, const char* at, size_t len) {
  Of(p)->reason.append(at, len);
  return 0;
}

int OnHeaderField(http_parser* p, const char* at, size_t len) {
  Builder* b = Of(p);
  if (b->headers.empty() || b->in_value) {
    if (b->headers.size() >= b->limits.max_headers) {
      return b->Fail("too many header fields", 431);
    }
    b->headers.emplace_back();
    b->in_value = false;
  }
  b->headers.back().name.append(at, len);
  return 0;
}

int OnHeaderValue(http_parser* p, const char* at, size_t len) {
  Builder* b = Of(p);
  if (b->headers.empty()) return b->Fail("header value without a name", 400);
  b->in_value = true;
  b->headers.back().value.append(at, len);
  return 0;
}

int OnHeadersComplete(http_parser* p) {
  Builder* b = Of(p);
  b->headers_done = true;
  for (Header& h : b->headers) {
    if (!IsToken(h.name)) return b->Fail("invalid header field name", 400);
    h.value = std::string(Trim(h.value));
  }
  if (p->http_major != 1) return b->Fail("unsupported HTTP version", 505);
  if (b->is_request) {
    if (p->method == HTTP_CONNECT) return b->Fail("CONNECT is not supported", 501);
    b->method = http_method_str(static_cast<http_method>(p->method));
  } else {
    b->status = static_cast<int>(p->status_code);
  }
  // Content-Length is known up front: refuse an oversized body before reading it.
  if ((p->flags & F_CHUNKED) == 0 && p->content_length != ULLONG_MAX &&
      p->content_length > b->limits.max_body_bytes && !b->head_response) {
    return b->Fail("body over the size limit", 413);
  }
  b->keep_alive = http_should_keep_alive(p) != 0;
  b->http_1_1 = p->http_minor >= 1;
  return b->head_response ? 1 : 0;
}

int OnBody(http_parser* p, const char* at, size_t len) {
  Builder* b = Of(p);
  if (len > b->limits.max_body_bytes - b->body.size()) {
    return b->Fail("body over the size limit", 413);
  }
  // Grow geometrically but never past the limit, so a body at its cap holds at most the cap
  // (plain doubling could hold twice as much just below it).
  const size_t needed = b->body.size() + len;
  if (needed > b->body.capacity()) {
    b->body.reserve(std::min(b->limits.max_body_bytes, std::max(needed, 2 * b->body.capacity())));
  }
  b->body.append(at, len);
  return 0;
}

int OnMessageComplete(http_parser* p) {
  Builder* b = Of(p);
  b->keep_alive = http_should_keep_alive(p) != 0;
  // Stop after each message so that pipelined bytes wait for the next Feed().
  http_parser_pause(p, 1);
  return 0;
}

const http_parser_settings& Settings() {
  static const http_parser_settings settings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_url = OnUrl;
    s.on_status = OnStatus;
    s.on_header_field = OnHeaderField;
    s.on_header_value = OnHeaderValue;
    s.on_headers_complete = OnHeadersComplete;
    s.on_body = OnBody;
    s.on_message_complete = OnMessageComplete;
    return s;
  }();
  return settings;
}

// The engine behind both parser classes. `pending` holds bytes received but not yet given to
// http-parser (only after a message completed: the rest waits for the next Feed()).
struct Engine {
  http_parser parser;
  Builder b;
  std::string pending;
  bool has_message = false;  // a complete message waits for Take()
  bool failed = false;
  bool started = false;  // bytes of the current (incomplete) message were parsed

  Engine(HttpLimits limits, bool is_request) {
    b.limits = limits;
    b.is_request = is_request;
    Init();
  }

  void Init() {
    http_parser_init(&parser, b.is_request ? HTTP_REQUEST : HTTP_RESPONSE);
    parser.data = &b;
    b.Reset();
    started = false;
  }

  ParseResult SetError(std::string why, int status) {
    failed = true;
    b.Fail(std::move(why), status);
    return ParseResult::kError;
  }

  ParseResult ErrorFromParser() {
    const auto err = HTTP_PARSER_ERRNO(&parser);
    if (!b.error.empty()) return SetError(b.error, b.error_status);
    switch (err) {
      case HPE_HEADER_OVERFLOW:
        return SetError("head over the size limit", 431);
      case HPE_INVALID_VERSION:
        return SetError("invalid HTTP version", 505);
      case HPE_INVALID_TRANSFER_ENCODING:
        return SetError("unsupported transfer coding", 501);
      default:
        return SetError(std::string("malformed message: ") + http_errno_description(err), 400);
    }
  }

  ParseResult Feed(std::string_view bytes) {
    if (failed) return ParseResult::kError;
    pending.append(bytes);
    if (has_message) return ParseResult::kMessage;
    size_t offset = 0;
    ParseResult result = ParseResult::kNeedMore;
    while (offset < pending.size()) {
      size_t n = pending.size() - offset;
      if (!b.headers_done) {
        // Give the parser no more head bytes than the limit allows, so the limit is exact.
        if (b.head_bytes >= b.limits.max_head_bytes) {
          pending.clear();
          return SetError("head over the size limit", 431);
        }
        n = std::min(n, b.limits.max_head_bytes - b.head_bytes);
      }
      const bool head_before = b.headers_done;
      const size_t parsed = http_parser_execute(&parser, &Settings(), pending.data() + offset, n);
      if (parsed > 0) started = true;
      if (!head_before && !b.headers_done) b.head_bytes += parsed;
      const auto err = HTTP_PARSER_ERRNO(&parser);
      if (err == HPE_PAUSED) {
        offset += parsed;
        http_parser_pause(&parser, 0);
        if (SkipInterim()) continue;
        has_message = true;
        result = ParseResult::kMessage;
        break;
      }
      if (err != HPE_OK) {
        pending.clear();
        return ErrorFromParser();
      }
      offset += parsed;
      if (parsed < n) {
        // Only a message after `Connection: close` or an upgrade stops the parser early.
        pending.clear();
        return SetError("data after the end of the connection's last message", 400);
      }
    }
    pending.erase(0, offset);
    return result;
  }

  // A 1xx interim response (100 Continue) precedes the real one: drop it and go on.
  bool SkipInterim() {
    if (b.is_request || b.status < 100 || b.status >= 200 || b.status == 101) return false;
    Init();
    return true;
  }

  ParseResult FinishEof() {
    if (failed) return ParseResult::kError;
    if (has_message) return ParseResult::kMessage;
    if (!pending.empty()) {
      const ParseResult r = Feed({});
      if (r != ParseResult::kNeedMore) return r;
    }
    if (!started) return ParseResult::kNeedMore;
    http_parser_execute(&parser, &Settings(), nullptr, 0);
    const auto err = HTTP_PARSER_ERRNO(&parser);
    if (err == HPE_PAUSED) {
      http_parser_pause(&parser, 0);
      has_message = true;
      b.keep_alive = false;
      return ParseResult::kMessage;
    }
    if (!b.error.empty()) return SetError(b.error, b.error_status);
    return SetError("connection closed before the response was complete", 400);
  }
};

}  // namespace

std::string_view Response::Get(std::string_view name, bool* found) const {
  return FindHeader(headers, name, found);
}

std::vector<std::string_view> Response::GetAll(std::string_view name) const {
  std::vector<std::string_view> values;
  for (const Header& h : headers) {
    if (EqualsIgnoreCase(h.name, name)) values.emplace_back(h.value);
  }
  return values;
}

std::string_view Request::Get(std::string_view name, bool* found) const {
  return FindHeader(headers, name, found);
}

std::string Request::Path() const {
  if (target.empty() || target.front() != '/') return {};
  std::string_view raw(target);
  raw = raw.substr(0, raw.find_first_of("?#"));
  std::string out;
  if (!PercentDecode(raw, &out, false)) return {};
  return out;
}

std::string_view Request::Query() const {
  std::string_view raw(target);
  const size_t q = raw.find('?');
  if (q == std::string_view::npos) return {};
  raw.remove_prefix(q + 1);
  return raw.substr(0, raw.find('#'));
}

struct ResponseParser::Impl : Engine {
  explicit Impl(HttpLimits limits) : Engine(limits, false) {}
};

struct RequestParser::Impl : Engine {
  explicit Impl(HttpLimits limits) : Engine(limits, true) {}
};

ResponseParser::ResponseParser(HttpLimits limits) : impl_(std::make_unique<Impl>(limits)) {}
ResponseParser::~ResponseParser() = default;

void ResponseParser::ExpectHeadResponse() { impl_->b.head_response = true; }

ParseResult ResponseParser::Feed(std::string_view bytes) {
  const ParseResult r = impl_->Feed(bytes);
  if (r == ParseResult::kError) error_ = impl_->b.error;
  return r;
}

ParseResult ResponseParser::FinishEof() {
  const ParseResult r = impl_->FinishEof();
  if (r == ParseResult::kError) error_ = impl_->b.error;
  return r;
}

Response ResponseParser::Take() {
  Builder& b = impl_->b;
  Response r;
  r.status = b.status;
  r.reason = std::move(b.reason);
  r.headers = std::move(b.headers);
  r.body = std::move(b.body);
  r.keep_alive = b.keep_alive;
  b.head_response = false;
  impl_->has_message = false;
  impl_->Init();
  return r;
}

RequestParser::RequestParser(HttpLimits limits) : impl_(std::make_unique<Impl>(limits)) {}
RequestParser::~RequestParser() = default;

ParseResult RequestParser::Feed(std::string_view bytes) {
  const ParseResult r = impl_->Feed(bytes);
  if (r == ParseResult::kError) {
    error_ = impl_->b.error;
    error_status_ = impl_->b.error_status;
  }
  return r;
}

Request RequestParser::Take() {
  Builder& b = impl_->b;
  Request r;
  r.method = std::move(b.method);
  r.target = std::move(b.target);
  r.headers = std::move(b.headers);
  r.body = std::move(b.body);
  r.keep_alive = b.keep_alive;
  r.http_1_1 = b.http_1_1;
  impl_->has_message = false;
  impl_->Init();
  return r;
}

std::string FormatRequest(std::string_view method, std::string_view target, std::string_view host,
                          const std::vector<Header>& headers, std::string_view body) {
  std::string out;
  out.reserve(128 + target.size() + body.size());
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ");
  out.append(host).append("\r\n");
  for (const Header& h : headers) out.append(h.name).append(": ").append(h.value).append("\r\n");
  if (!body.empty() || method == "POST" || method == "PUT") {
    out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  out.append("\r\n").append(body);
  return out;
}

std::string FormatResponse(int status, const std::vector<Header>& headers, std::string_view body,
                           bool keep_alive, bool head_only) {
  std::string out;
  out.reserve(128 + body.size());
  out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ");
  out.append(ReasonPhrase(status)).append("\r\n");
  for (const Header& h : headers) out.append(h.name).append(": ").append(h.value).append("\r\n");
  out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  if (!keep_alive) out.append("Connection: close\r\n");
  out.append("\r\n");
  if (!head_only) out.append(body);
  return out;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string PercentEncodePathSegment(std::string_view segment) {
  std::string out;
  out.reserve(segment.size());
  for (char ch : segment) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c)) {
      out.push_back(ch);
    } else {
      AppendEscape(&out, c);
    }
  }
  return out;
}

std::string FormEncodeComponent(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c)) {
      out.push_back(ch);
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      AppendEscape(&out, c);
    }
  }
  return out;
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out.push_back('&');
    out.append(FormEncodeComponent(name)).append("=").append(FormEncodeComponent(value));
  }
  return out;
}

bool PercentDecode(std::string_view in, std::string* out, bool plus_is_space) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>((hi << 4) | lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::string name;
    std::string value;
    if (!PercentDecode(part.substr(0, eq), &name, true)) continue;
    if (eq != std::string_view::npos && !PercentDecode(part.substr(eq + 1), &value, true)) continue;
    if (name.empty()) continue;
    pairs.emplace_back(std::move(name), std::move(value));
  }
  return pairs;
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                       (uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) |
                       uint32_t{static_cast<unsigned char>(bytes[i + 2])};
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    if (rest == 2) v |= uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

}  // namespace roundhouse::protocol::http
