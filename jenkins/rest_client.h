// The Jenkins-aware layer over HttpClient for one master (doc/jenkins.md §2.1–2.2): paths are
// relative to the master's base URL (which may have a path prefix, e.g. http://h/jenkins/),
// HTTP Basic auth is sent pre-emptively, POST bodies are form-encoded, and in password mode the
// crumb (W0) and its session cookie are fetched before the first POST and re-fetched once when a
// POST answers 403 with "No valid crumb" in its body. API tokens never need crumbs.
//
// It also records the headers the adapter cares about (X-Jenkins, X-Jenkins-Session) from every
// response. It never logs credentials, cookies or query strings.
//
// Thread-safety: loop thread only.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "jenkins/http_client.h"

namespace roundhouse::jenkins {

// A parsed http:// or https:// base URL.
struct BaseUrl {
  bool tls = false;   // https
  std::string host;   // without brackets for IPv6 literals
  uint16_t port = 80;  // 443 by default for https
  std::string path;   // always starts and ends with '/', e.g. "/" or "/jenkins/"
  std::string text;   // normalised "http[s]://host[:port]/path/", as used in absolute URLs
  std::string HostHeader() const;  // "host" or "host:port" ([v6]:port for IPv6)
};
Result<BaseUrl> ParseBaseUrl(std::string_view url);

// Which size cap a reply gets. A list reply (R2 job table, R4 node table, R8 queue, R10 builds)
// grows with the size of the site; every other reply (R1, R3, R5, R7, R9, R11, the W0 crumb, the
// answer to any POST) describes one thing and gets the much smaller item cap. A reply over its
// cap fails with HttpError::kProtocol before the rest of it is read (doc/jenkins.md).
enum class ReplySize { kItem, kList };

struct RestOptions {
  BaseUrl base;
  std::string user;
  std::string api_token;  // token mode (preferred); exactly one of api_token / password
  std::string password;   // password mode: crumbs + session cookie
  HttpClientOptions http;  // host/port and tls.enabled are filled from `base`
  size_t max_item_reply_bytes = 2 * 1024 * 1024;
  size_t max_list_reply_bytes = 16 * 1024 * 1024;
};

struct RestResult {
  HttpResult http;  // transport outcome and the response
  bool ok() const { return http.error == HttpError::kNone; }
  int status() const { return ok() ? http.response.status : 0; }
  const std::string& body() const { return http.response.body; }
};

class RestClient {
 public:
  using Callback = std::function<void(RestResult&&)>;

  RestClient(uv_loop_t* loop, RestOptions options);
  ~RestClient();
  RestClient(const RestClient&) = delete;
  RestClient& operator=(const RestClient&) = delete;

  // `path` is relative to the base path and already encoded, without a leading '/':
  // "api/json?tree=...", "job/a/job/b/buildWithParameters?delay=0sec".
  void Get(std::string path, Callback callback, ReplySize size = ReplySize::kItem);
  // POST with `form` as an application/x-www-form-urlencoded; charset=UTF-8 body (may be empty).
  void Post(std::string path, std::vector<std::pair<std::string, std::string>> form,
            Callback callback);

  // Same contract as HttpClient::Close.
  void Close(std::function<void()> closed);

  // Changes the token (api_token_file re-read); applies to requests sent from now on.
  void SetApiToken(std::string token);

  // Values of the last response that carried them; empty before.
  const std::string& jenkins_version() const { return jenkins_version_; }  // X-Jenkins
  const std::string& instance_id() const { return instance_id_; }          // X-Jenkins-Session

  // Turns a URL Jenkins returned (absolute, e.g. a build `url` or a `Location`) into a path for
  // Get/Post: the part after the base path. Relative paths ("/queue/item/5/") are accepted too.
  // Empty when the URL is for another origin or outside the base path.
  std::string RelativePath(std::string_view url) const;

  const RestOptions& options() const { return options_; }
  size_t in_flight() const;

 private:
  struct Impl;
  RestOptions options_;
  std::string jenkins_version_;
  std::string instance_id_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace roundhouse::jenkins
