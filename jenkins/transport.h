// Transport: the REST calls an Adapter makes to its master, as an interface. Production uses
// RestTransport (over RestClient: HTTP, auth, crumbs); unit tests (test/unit/jenkins) give the
// adapter a scripted fake, so every rule of the adapter can be tested on a FakeClock without a
// socket. The contract of each call is RestClient's (jenkins/rest_client.h).
//
// Ownership: the Adapter owns its Transport. A callback passed to Get/Post runs at most once,
// never from inside the call that queued it, and not after Close's `closed` has run.
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

#include "jenkins/rest_client.h"

namespace roundhouse::jenkins {

class Transport {
 public:
  using Callback = std::function<void(RestResult&&)>;
  using Form = std::vector<std::pair<std::string, std::string>>;

  virtual ~Transport() = default;

  // `path` is relative to the master's base path, encoded, without a leading '/'.
  virtual void Get(std::string path, Callback callback, ReplySize size) = 0;
  virtual void Post(std::string path, Form form, Callback callback) = 0;
  // Cancels what is in flight (callbacks get kCancelled or nothing), then calls `closed` from a
  // later loop iteration.
  virtual void Close(std::function<void()> closed) = 0;
  // api_token_file re-read: the token for requests sent from now on.
  virtual void SetApiToken(std::string token) = 0;
  // X-Jenkins / X-Jenkins-Session of the last response that carried them; empty before.
  virtual const std::string& jenkins_version() const = 0;
  virtual const std::string& instance_id() const = 0;
  // A URL Jenkins returned, as a path for Get/Post; empty for another origin or outside the base.
  virtual std::string RelativePath(std::string_view url) const = 0;
};

// The production Transport: a RestClient on `loop`.
class RestTransport final : public Transport {
 public:
  RestTransport(uv_loop_t* loop, RestOptions options) : client_(loop, std::move(options)) {}

  void Get(std::string path, Callback callback, ReplySize size) override {
    client_.Get(std::move(path), std::move(callback), size);
  }
  void Post(std::string path, Form form, Callback callback) override {
    client_.Post(std::move(path), std::move(form), std::move(callback));
  }
  void Close(std::function<void()> closed) override { client_.Close(std::move(closed)); }
  void SetApiToken(std::string token) override { client_.SetApiToken(std::move(token)); }
  const std::string& jenkins_version() const override { return client_.jenkins_version(); }
  const std::string& instance_id() const override { return client_.instance_id(); }
  std::string RelativePath(std::string_view url) const override {
    return client_.RelativePath(url);
  }

 private:
  RestClient client_;
};

}  // namespace roundhouse::jenkins
