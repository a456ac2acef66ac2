#include "jenkins/rest_client.h"

#include <deque>
#include <string>
#include <utility>

#include "base/text.h"
#include "jenkins/rest_model.h"

namespace roundhouse::jenkins {
namespace {

namespace http = protocol::http;

constexpr std::string_view kFormType = "application/x-www-form-urlencoded; charset=UTF-8";

struct Authority {
  std::string host;
  uint16_t port = 80;
};

// Parses "host", "host:port", "[v6]" or "[v6]:port"; `default_port` when none is given.
Result<Authority> ParseAuthority(std::string_view text, uint16_t default_port) {
  Authority a;
  a.port = default_port;
  std::string_view port_text;
  if (text.find('@') != std::string_view::npos) {
    return Status::Error("base URL must not contain credentials (use user and api_token_file)");
  }
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return Status::Error("unterminated IPv6 address in URL");
    a.host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Status::Error("unexpected text after IPv6 address in URL");
      port_text = rest.substr(1);
      if (port_text.empty()) return Status::Error("empty port in URL");
    }
    if (a.host.find(':') == std::string::npos) return Status::Error("invalid IPv6 address in URL");
  } else {
    const size_t colon = text.find(':');
    a.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = text.substr(colon + 1);
      if (port_text.empty()) return Status::Error("empty port in URL");
    }
  }
  if (a.host.empty()) return Status::Error("URL has no host");
  for (char c : a.host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
          c == ':' || c == '%')) {
      return Status::Error("invalid character in URL host");
    }
  }
  a.host = ToLowerAscii(a.host);
  if (!port_text.empty()) {
    unsigned long port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) return Status::Error("invalid port in URL");
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port > 65535) return Status::Error("port out of range in URL");
    a.port = static_cast<uint16_t>(port);
  }
  return a;
}

// Splits "http[s]://authority/path..." into scheme, authority and path (path starting with '/').
bool SplitHttpUrl(std::string_view url, bool* tls, std::string_view* authority,
                  std::string_view* path) {
  if (StartsWithIgnoreCase(url, "http://")) {
    *tls = false;
    url.remove_prefix(7);
  } else if (StartsWithIgnoreCase(url, "https://")) {
    *tls = true;
    url.remove_prefix(8);
  } else {
    return false;
  }
  const size_t slash = url.find_first_of("/?#");
  *authority = url.substr(0, slash);
  *path = slash == std::string_view::npos ? std::string_view("/") : url.substr(slash);
  return true;
}

}  // namespace

std::string BaseUrl::HostHeader() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) h += ":" + std::to_string(port);
  return h;
}

Result<BaseUrl> ParseBaseUrl(std::string_view url) {
  while (!url.empty() && (url.front() == ' ' || url.front() == '\t')) url.remove_prefix(1);
  while (!url.empty() && (url.back() == ' ' || url.back() == '\t')) url.remove_suffix(1);
  bool tls = false;
  std::string_view authority;
  std::string_view path;
  if (!SplitHttpUrl(url, &tls, &authority, &path)) {
    return Status::Error("base URL must start with http:// or https://");
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    return Status::Error("base URL must not have a query or fragment");
  }
  Result<Authority> a = ParseAuthority(authority, tls ? 443 : 80);
  if (!a.ok()) return a.status();
  BaseUrl base;
  base.tls = tls;
  base.host = a.value().host;
  base.port = a.value().port;
  base.path = std::string(path);
  if (base.path.back() != '/') base.path.push_back('/');
  base.text = (tls ? "https://" : "http://") + base.HostHeader() + base.path;
  return base;
}

struct RestClient::Impl {
  enum class Crumb { kUnknown, kFetching, kHave, kOff };

  struct PendingPost {
    std::string path;
    std::string body;
    Callback callback;
  };

  Impl(RestClient& o, uv_loop_t* loop, HttpClientOptions http_options)
      : owner(o), http(loop, std::move(http_options)) {}

  RestClient& owner;
  HttpClient http;
  std::string authorization;  // "Basic ..." or empty
  Crumb crumb_state = Crumb::kUnknown;
  std::string crumb_field;
  std::string crumb;
  std::deque<PendingPost> waiting_for_crumb;

  bool password_mode() const {
    return owner.options_.api_token.empty() && !owner.options_.password.empty();
  }

  void UpdateAuthorization() {
    const RestOptions& o = owner.options_;
    const std::string& secret = o.api_token.empty() ? o.password : o.api_token;
    authorization.clear();
    if (!o.user.empty()) authorization = "Basic " + http::Base64Encode(o.user + ":" + secret);
  }

  HttpRequest Make(std::string method, const std::string& path) {
    HttpRequest r;
    r.method = std::move(method);
    r.target = owner.options_.base.path + path;
    r.headers.push_back({"Accept", "application/json"});
    r.max_body_bytes = owner.options_.max_item_reply_bytes;
    if (!authorization.empty()) r.headers.push_back({"Authorization", authorization});
    return r;
  }

  void Record(const HttpResult& result) {
    if (result.error != HttpError::kNone) return;
    bool found = false;
    std::string_view v = result.response.Get("X-Jenkins", &found);
    if (found && !v.empty()) owner.jenkins_version_ = std::string(v);
    v = result.response.Get("X-Jenkins-Session", &found);
    if (found && !v.empty()) owner.instance_id_ = std::string(v);
  }

  void Get(const std::string& path, Callback callback, ReplySize size) {
    HttpRequest r = Make("GET", path);
    if (size == ReplySize::kList) r.max_body_bytes = owner.options_.max_list_reply_bytes;
    http.Send(std::move(r), [this, callback = std::move(callback)](HttpResult&& r) {
      Record(r);
      callback(RestResult{std::move(r)});
    });
  }

  void Post(PendingPost post, bool may_refetch) {
    if (password_mode() && (crumb_state == Crumb::kUnknown || crumb_state == Crumb::kFetching)) {
      waiting_for_crumb.push_back(std::move(post));
      if (crumb_state == Crumb::kUnknown) FetchCrumb();
      return;
    }
    HttpRequest r = Make("POST", post.path);
    r.headers.push_back({"Content-Type", std::string(kFormType)});
    if (password_mode() && crumb_state == Crumb::kHave) r.headers.push_back({crumb_field, crumb});
    r.body = post.body;
    http.Send(std::move(r), [this, post = std::move(post), may_refetch](HttpResult&& res) mutable {
      Record(res);
      if (may_refetch && password_mode() && res.error == HttpError::kNone &&
          res.response.status == 403 &&
          res.response.body.find("No valid crumb") != std::string::npos) {
        crumb_state = Crumb::kUnknown;
        Post(std::move(post), false);
        return;
      }
      post.callback(RestResult{std::move(res)});
    });
  }

  void FetchCrumb() {
    crumb_state = Crumb::kFetching;
    http.Send(Make("GET", "crumbIssuer/api/json"), [this](HttpResult&& res) {
      Record(res);
      crumb_state = Crumb::kUnknown;
      if (res.error == HttpError::kNone && res.response.status == 404) {
        crumb_state = Crumb::kOff;
      } else if (res.error == HttpError::kNone && res.response.status == 200) {
        // The same bounded parser as every other reply (json_document.h): a hostile crumb
        // reply is an error like any other, never a deep recursion.
        Result<jenkins::Crumb> parsed = ParseCrumb(res.response.body);
        if (parsed.ok()) {
          crumb = std::move(parsed.value().value);
          crumb_field = std::move(parsed.value().field);
          crumb_state = Crumb::kHave;
        }
      }
      // Without a crumb (issuer failed) the POSTs go out bare: Jenkins answers them 403, which
      // the caller sees; the next POST tries the issuer again.
      std::deque<PendingPost> posts;
      posts.swap(waiting_for_crumb);
      const bool have = crumb_state != Crumb::kUnknown;
      for (PendingPost& p : posts) {
        if (have) {
          Post(std::move(p), true);
        } else {
          SendBare(std::move(p));
        }
      }
    });
  }

  void SendBare(PendingPost post) {
    HttpRequest r = Make("POST", post.path);
    r.headers.push_back({"Content-Type", std::string(kFormType)});
    r.body = std::move(post.body);
    http.Send(std::move(r), [this, callback = std::move(post.callback)](HttpResult&& res) {
      Record(res);
      callback(RestResult{std::move(res)});
    });
  }
};

RestClient::RestClient(uv_loop_t* loop, RestOptions options) : options_(std::move(options)) {
  HttpClientOptions http_options = options_.http;
  http_options.host = options_.base.host;
  http_options.port = options_.base.port;
  http_options.tls.enabled = options_.base.tls;
  options_.http = http_options;
  impl_ = std::make_unique<Impl>(*this, loop, std::move(http_options));
  impl_->UpdateAuthorization();
}

RestClient::~RestClient() = default;

void RestClient::Get(std::string path, Callback callback, ReplySize size) {
  impl_->Get(path, std::move(callback), size);
}

void RestClient::Post(std::string path, std::vector<std::pair<std::string, std::string>> form,
                      Callback callback) {
  impl_->Post({std::move(path), http::FormEncode(form), std::move(callback)}, true);
}

void RestClient::Close(std::function<void()> closed) { impl_->http.Close(std::move(closed)); }

void RestClient::SetApiToken(std::string token) {
  options_.api_token = std::move(token);
  impl_->UpdateAuthorization();
}

std::string RestClient::RelativePath(std::string_view url) const {
  std::string_view path;
  if (!url.empty() && url.front() == '/') {
    path = url;
  } else {
    bool tls = false;
    std::string_view authority;
    if (!SplitHttpUrl(url, &tls, &authority, &path)) return {};
    Result<Authority> a = ParseAuthority(authority, tls ? 443 : 80);
    if (!a.ok() || tls != options_.base.tls || a.value().host != options_.base.host ||
        a.value().port != options_.base.port) {
      return {};
    }
  }
  const std::string& base = options_.base.path;
  if (path.substr(0, base.size()) == base) return std::string(path.substr(base.size()));
  return {};  // another path (the base path without its slash names the root: also empty)
}

size_t RestClient::in_flight() const { return impl_->http.in_flight(); }

}  // namespace roundhouse::jenkins
