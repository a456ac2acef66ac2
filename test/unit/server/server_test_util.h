// Helpers for the server unit tests: a scratch directory and a hermetic ParseCommandLine.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "server/config.h"

namespace roundhouse::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/rh-server-test-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Writes `text` to `name` and returns its full path.
  std::string Write(const std::string& name, const std::string& text) const {
    std::string p = File(name);
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }

 private:
  std::string path_;
};

// An environment that never reads /etc/gearmand.conf and has a fixed nodename.
inline ParseEnv TestEnv() {
  ParseEnv env;
  env.default_config_file = "/nonexistent-roundhouse-test/gearmand.conf";
  env.nodename = "testhost";
  return env;
}

inline Result<Config> Parse(const std::vector<std::string>& args, const ParseEnv& env = TestEnv()) {
  std::vector<const char*> argv{"roundhouse"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data(), env);
}

inline std::string ErrorOf(const Result<Config>& r) { return r.status().message(); }

}  // namespace roundhouse::testing
