// Master settings (doc/jenkins.md §4.1): defaults, every key with a good and a bad value, the
// credential rules, token files, error texts (origin prefix, never a secret), Describe() and
// ToRestOptions().
#include "jenkins/master_settings.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>
#include <string>

namespace roundhouse::jenkins {
namespace {

using Raw = std::map<std::string, std::string>;

constexpr char kToken[] = "11e4c0ffeeTOKENdeadbeef";
constexpr char kPassword[] = "hunter2-PASSWORD";

Raw Minimal() {
  return {{"base_url", "http://jenkins01.example.org"}, {"user", "gearman"}, {"api_token", kToken}};
}

Raw With(Raw raw, const std::string& key, const std::string& value) {
  raw[key] = value;
  return raw;
}

MasterSettings Parse(const Raw& raw) {
  auto r = ParseMasterSettings("jenkins01", raw, "roundhouse.conf:12");
  INFO((r.ok() ? std::string() : r.status().message()));
  REQUIRE(r.ok());
  return r.value();
}

std::string Error(const Raw& raw) {
  auto r = ParseMasterSettings("jenkins01", raw, "roundhouse.conf:12");
  REQUIRE_FALSE(r.ok());
  return r.status().message();
}

// A temporary file holding `contents`, removed at scope exit.
class TempFile {
 public:
  explicit TempFile(const std::string& contents) {
    char name[] = "/tmp/roundhouse-token-XXXXXX";
    const int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    path_ = name;
    REQUIRE(write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size()));
    close(fd);
  }
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST_CASE("minimal settings take the defaults of doc/jenkins.md §4.1", "[jenkins][settings]") {
  const MasterSettings s = Parse(Minimal());
  CHECK(s.name == "jenkins01");
  CHECK(s.base_url.text == "http://jenkins01.example.org/");
  CHECK(s.base_url.host == "jenkins01.example.org");
  CHECK(s.base_url.port == 80);
  CHECK(s.user == "gearman");
  CHECK(s.api_token == kToken);
  CHECK(s.password.empty());
  CHECK(s.manager_name == "jenkins01");
  CHECK(s.enabled);
  CHECK(s.weight == 1);
  CHECK(s.pin_mode == PinMode::kNode);
  CHECK(s.pin_parameter == "GEARMAN_NODE");
  CHECK(s.unique_param == "GEARMAN_UNIQUE");
  CHECK(s.param_policy == ParamPolicy::kDrop);
  CHECK(s.function_naming == FunctionNaming::kShort);
  CHECK(s.folder_depth == 3);
  CHECK_FALSE(s.job_include);
  CHECK_FALSE(s.job_exclude);
  CHECK_FALSE(s.name_filter);
  CHECK(s.flyweight_labels.empty());
  CHECK(s.label_eval == LabelEval::kLocal);
  CHECK_FALSE(s.emit_worker_fields);
  CHECK(s.poll_computers_ms == 3000);
  CHECK(s.poll_computers_idle_ms == 15000);
  CHECK(s.poll_jobs_ms == 60000);
  CHECK(s.poll_node_modes_ms == 300000);
  CHECK(s.poll_queue_item_ms == 1000);
  CHECK(s.poll_build_ms == 5000);
  CHECK(s.poll_build_max_ms == 15000);
  CHECK(s.poll_health_ms == 10000);
  CHECK(s.http_connect_timeout_ms == 5000);
  CHECK(s.http_timeout_ms == 15000);
  CHECK(s.http_max_concurrency == 8);
  CHECK(s.max_inflight_starts == 20);
  CHECK(s.queue_wait_timeout_ms == 60000);
  CHECK(s.contention_cooldown_ms == 30000);
  CHECK(s.max_requeues == 3);
  CHECK(s.unhealthy_after == 3);
  CHECK(s.inflight_grace_ms == 600000);
  CHECK(s.node_lost_policy == NodeLostPolicy::kRetry);
  CHECK(s.node_lost_window_ms == 120000);
  CHECK(s.restart_policy == RestartPolicy::kRetry);
  CHECK_FALSE(s.offline_timing);
  CHECK(s.offline_message == "Offline due to Gearman request");
  CHECK(s.stop_escalation_ms == 30000);
  CHECK(s.meta_timeout_ms == 30000);
  CHECK(s.orphan_policy == OrphanPolicy::kAbort);
  CHECK(s.resume_window_ms == 60000);
  CHECK(s.raw == Minimal());
}

TEST_CASE("every key accepts a good value", "[jenkins][settings]") {
  TempFile pem("-----BEGIN CERTIFICATE-----\n");  // only its existence is checked here
  struct Case {
    std::string key;
    std::string value;
    std::function<bool(const MasterSettings&)> check;
  };
  const std::vector<Case> cases = {
      {"name", "jenkins01", [](auto& s) { return s.name == "jenkins01"; }},
      {"base_url", "http://10.0.0.5:8080/jenkins",
       [](auto& s) {
         return s.base_url.text == "http://10.0.0.5:8080/jenkins/" && s.base_url.port == 8080 &&
                s.base_url.path == "/jenkins/";
       }},
      {"user", "zuul-bot", [](auto& s) { return s.user == "zuul-bot"; }},
      {"manager_name", "jenkins01.example.org",
       [](auto& s) { return s.manager_name == "jenkins01.example.org"; }},
      {"enabled", "no", [](auto& s) { return !s.enabled; }},
      {"weight", "1000", [](auto& s) { return s.weight == 1000; }},
      {"pin_mode", "label:GEARMAN_LABEL",
       [](auto& s) { return s.pin_mode == PinMode::kLabel && s.pin_parameter == "GEARMAN_LABEL"; }},
      {"pin_mode", "node:NODE",
       [](auto& s) { return s.pin_mode == PinMode::kNode && s.pin_parameter == "NODE"; }},
      {"pin_mode", "label-only", [](auto& s) { return s.pin_mode == PinMode::kLabelOnly; }},
      {"unique_param", "ZUUL_UUID", [](auto& s) { return s.unique_param == "ZUUL_UUID"; }},
      {"param_policy", "strict", [](auto& s) { return s.param_policy == ParamPolicy::kStrict; }},
      {"function_naming", "full",
       [](auto& s) { return s.function_naming == FunctionNaming::kFull; }},
      {"folder_depth", "0", [](auto& s) { return s.folder_depth == 0; }},
      {"folder_depth", "10", [](auto& s) { return s.folder_depth == 10; }},
      {"job_include", "^(gate|check)-", [](auto& s) { return s.job_include == "^(gate|check)-"; }},
      {"job_exclude", "-old$", [](auto& s) { return s.job_exclude == "-old$"; }},
      {"name_filter", "^[ -~]+$", [](auto& s) { return s.name_filter == "^[ -~]+$"; }},
      {"flyweight_labels", "team/deploy=linux && x86; matrix=a==b ;",
       [](auto& s) {
         return s.flyweight_labels == std::map<std::string, std::string>{
                                          {"team/deploy", "linux && x86"}, {"matrix", "a==b"}};
       }},
      {"label_eval", "local", [](auto& s) { return s.label_eval == LabelEval::kLocal; }},
      {"emit_worker_fields", "on", [](auto& s) { return s.emit_worker_fields; }},
      {"poll.computers_s", "0.2", [](auto& s) { return s.poll_computers_ms == 200; }},
      {"poll.computers_idle_s", "30", [](auto& s) { return s.poll_computers_idle_ms == 30000; }},
      {"poll.jobs_s", "120", [](auto& s) { return s.poll_jobs_ms == 120000; }},
      {"poll.node_modes_s", "600.5", [](auto& s) { return s.poll_node_modes_ms == 600500; }},
      {"poll.queue_item_s", "0.25", [](auto& s) { return s.poll_queue_item_ms == 250; }},
      {"poll.build_s", "2", [](auto& s) { return s.poll_build_ms == 2000; }},
      {"poll.build_max_s", "5", [](auto& s) { return s.poll_build_max_ms == 5000; }},
      {"poll.health_s", "0.001", [](auto& s) { return s.poll_health_ms == 1; }},
      {"http.connect_timeout_s", "1.5", [](auto& s) { return s.http_connect_timeout_ms == 1500; }},
      {"http.timeout_s", "60", [](auto& s) { return s.http_timeout_ms == 60000; }},
      {"http.max_concurrency", "64", [](auto& s) { return s.http_max_concurrency == 64; }},
      {"tls.verify", "no", [](auto& s) { return !s.tls_verify; }},
      {"tls.ca_file", pem.path(), [&](auto& s) { return s.tls_ca_file == pem.path(); }},
      {"tls.cert_file", pem.path(), [&](auto& s) { return s.tls_cert_file == pem.path(); }},
      {"tls.key_file", pem.path(), [&](auto& s) { return s.tls_key_file == pem.path(); }},
      {"proxy", "http://proxy.example:3128",
       [](auto& s) { return s.proxy == "http://proxy.example:3128"; }},
      {"proxy", "none", [](auto& s) { return s.proxy == "none"; }},
      {"max_inflight_starts", "1", [](auto& s) { return s.max_inflight_starts == 1; }},
      {"queue_wait_timeout_s", "90", [](auto& s) { return s.queue_wait_timeout_ms == 90000; }},
      {"contention_cooldown_s", "0", [](auto& s) { return s.contention_cooldown_ms == 0; }},
      {"max_requeues", "0", [](auto& s) { return s.max_requeues == 0; }},
      {"unhealthy_after", "5", [](auto& s) { return s.unhealthy_after == 5; }},
      {"inflight_grace_s", "0", [](auto& s) { return s.inflight_grace_ms == 0; }},
      {"node_lost_policy", "report",
       [](auto& s) { return s.node_lost_policy == NodeLostPolicy::kReport; }},
      {"node_lost_window_s", "300", [](auto& s) { return s.node_lost_window_ms == 300000; }},
      {"restart_policy", "report",
       [](auto& s) { return s.restart_policy == RestartPolicy::kReport; }},
      {"offline_timing", "on-complete",
       [](auto& s) { return s.offline_timing == OfflineTiming::kOnComplete; }},
      {"offline_timing", "on-start",
       [](auto& s) { return s.offline_timing == OfflineTiming::kOnStart; }},
      {"offline_message", "Taken offline by Zuul \xE2\x9C\x93",
       [](auto& s) { return s.offline_message == "Taken offline by Zuul \xE2\x9C\x93"; }},
      {"stop_escalation_s", "0", [](auto& s) { return s.stop_escalation_ms == 0; }},
      {"meta_timeout_s", "45", [](auto& s) { return s.meta_timeout_ms == 45000; }},
      {"orphan_policy", "ignore", [](auto& s) { return s.orphan_policy == OrphanPolicy::kIgnore; }},
      {"resume_window_s", "0", [](auto& s) { return s.resume_window_ms == 0; }},
  };
  std::set<std::string> covered;
  for (const Case& c : cases) {
    INFO(c.key << " = " << c.value);
    // tls.* keys are for an https master; a key file goes with a certificate file.
    Raw raw = c.key.starts_with("tls.")
                  ? With(Minimal(), "base_url", "https://jenkins01.example.org")
                  : Minimal();
    if (c.key == "tls.key_file") raw["tls.cert_file"] = pem.path();
    const MasterSettings s = Parse(With(raw, c.key, c.value));
    CHECK(c.check(s));
    covered.insert(c.key);
  }
  // Credentials are covered by their own test cases.
  for (std::string_view key : MasterSettingKeys()) {
    if (key == "api_token" || key == "api_token_file" || key == "api_token_env" || key == "password") continue;
    INFO(key);
    CHECK(covered.count(std::string(key)) == 1);
  }
}

TEST_CASE("every key rejects a bad value and names the key", "[jenkins][settings]") {
  struct Case {
    std::string key;
    std::string value;
    std::string error_part;
  };
  const std::vector<Case> cases = {
      {"name", "other", "differs"},
      {"base_url", "https://u:p@jenkins01.example.org/", "credentials"},
      {"base_url", "ftp://x/", "http://"},
      {"base_url", "", "required"},
      {"user", "", "required"},
      {"user", "a:b", "':'"},
      {"manager_name", "jenkins 01", "whitespace"},
      {"manager_name", "", "1 to 128"},
      {"manager_name", "a\x7F", "control"},
      {"enabled", "maybe", "not a boolean"},
      {"weight", "0", "from 1 to 1000"},
      {"weight", "1001", "from 1 to 1000"},
      {"weight", "-1", "not an integer"},
      {"weight", "1.5", "not an integer"},
      {"weight", "99999999999999999999999", "not an integer"},
      {"pin_mode", "node:", "not a valid parameter name"},
      {"pin_mode", "label:A B", "not a valid parameter name"},
      {"pin_mode", "host:X", "node:<P>, label:<P> or label-only"},
      {"pin_mode", "", "node:<P>"},
      {"unique_param", "", "not a valid parameter name"},
      {"param_policy", "lenient", "not one of drop or strict"},
      {"function_naming", "long", "not one of short or full"},
      {"folder_depth", "11", "from 0 to 10"},
      {"job_include", "(", "not a valid regular expression"},
      {"job_exclude", "", "empty regular expression"},
      {"name_filter", std::string(2000, 'a'), "longer than 1024"},
      {"flyweight_labels", "deploy", "not fullName=expression"},
      {"flyweight_labels", "=linux", "empty job name"},
      {"flyweight_labels", "deploy=", "empty label expression"},
      {"flyweight_labels", "a=x;a=y", "given twice"},
      {"label_eval", "server", "not one of local or remote"},
      {"label_eval", "remote", "not built yet"},
      {"emit_worker_fields", "2", "not a boolean"},
      {"poll.computers_s", "0", "greater than 0"},
      {"poll.computers_idle_s", "-3", "not a number of seconds"},
      {"poll.jobs_s", ".5", "not a number of seconds"},
      {"poll.node_modes_s", "1.", "not a number of seconds"},
      {"poll.queue_item_s", "0.0001", "not a number of seconds"},
      {"poll.build_s", "1e3", "not a number of seconds"},
      {"poll.build_max_s", "1", "must not be less than poll.build_s"},
      {"poll.health_s", "1000001", "not a number of seconds"},
      {"http.connect_timeout_s", "0.000", "greater than 0"},
      {"http.timeout_s", "fast", "not a number of seconds"},
      {"http.max_concurrency", "65", "from 1 to 64"},
      {"tls.verify", "false", "only for an https:// base_url"},
      {"tls.verify", "perhaps", "not a boolean"},
      {"tls.ca_file", "/nonexistent/ca.pem", "cannot read '/nonexistent/ca.pem'"},
      {"tls.cert_file", "", "empty path"},
      {"tls.key_file", "/etc", "is not a regular file"},
      {"proxy", "socks5://p:1080", "is not none, http://HOST:PORT or https://HOST:PORT"},
      {"proxy", "http://user:pw@p:3128", "must not contain credentials"},
      {"max_inflight_starts", "0", "from 1 to"},
      {"queue_wait_timeout_s", "0", "greater than 0"},
      {"contention_cooldown_s", "x", "not a number of seconds"},
      {"max_requeues", "1001", "from 0 to 1000"},
      {"unhealthy_after", "0", "from 1 to 1000"},
      {"inflight_grace_s", " 5", "not a number of seconds"},
      {"node_lost_policy", "fail", "not one of retry or report"},
      {"node_lost_window_s", "inf", "not a number of seconds"},
      {"restart_policy", "ignore", "not one of retry or report"},
      {"offline_timing", "on-end", "not one of on-start or on-complete"},
      {"offline_message", "", "1 to 1024 bytes"},
      {"offline_message", "two\nlines", "control"},
      {"stop_escalation_s", "nan", "not a number of seconds"},
      {"meta_timeout_s", "0", "greater than 0"},
      {"orphan_policy", "keep", "not one of abort or ignore"},
      {"resume_window_s", "1,5", "not a number of seconds"},
  };
  std::set<std::string> covered;
  for (const Case& c : cases) {
    INFO(c.key << " = " << c.value);
    const std::string error = Error(With(Minimal(), c.key, c.value));
    CHECK_THAT(error, Catch::StartsWith("roundhouse.conf:12: jenkins master 'jenkins01': " + c.key +
                                        ": "));
    CHECK_THAT(error, Catch::Contains(c.error_part));
    CHECK_THAT(error, !Catch::Contains(kToken));
    covered.insert(c.key);
  }
  for (std::string_view key : MasterSettingKeys()) {
    if (key == "api_token" || key == "api_token_file" || key == "api_token_env" || key == "password") continue;
    INFO(key);
    CHECK(covered.count(std::string(key)) == 1);
  }
}

TEST_CASE("booleans accept every documented spelling", "[jenkins][settings]") {
  for (const char* yes : {"true", "yes", "on", "1", "TRUE", "Yes", "ON"}) {
    CHECK(Parse(With(Minimal(), "emit_worker_fields", yes)).emit_worker_fields);
  }
  for (const char* no : {"false", "no", "off", "0", "False", "NO", "Off"}) {
    CHECK_FALSE(Parse(With(Minimal(), "enabled", no)).enabled);
  }
  for (const char* bad : {"", "y", "n", "t", "enable", "01", " true"}) {
    INFO(bad);
    CHECK_THAT(Error(With(Minimal(), "enabled", bad)), Catch::Contains("not a boolean"));
  }
}

TEST_CASE("unknown keys and bad master names are errors", "[jenkins][settings]") {
  CHECK_THAT(Error(With(Minimal(), "poll.computer_s", "3")),
             Catch::Contains("'poll.computer_s': unknown setting"));
  CHECK_THAT(Error(With(Minimal(), "unroutable_timeout_s", "3")),
             Catch::Contains("unknown setting"));
  for (const char* bad : {"", "a b", "j/1", "caf\xC3\xA9"}) {
    INFO(bad);
    auto r = ParseMasterSettings(bad, Minimal(), "admin");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains("name: must be 1 to 64 bytes"));
  }
  CHECK_FALSE(ParseMasterSettings(std::string(65, 'a'), Minimal(), "admin").ok());
  CHECK(ParseMasterSettings(std::string(64, 'a'), Minimal(), "admin").ok());
  // The name may come from the pairs alone.
  auto from_raw = ParseMasterSettings("", With(Minimal(), "name", "j-2.x_y"), "command line");
  REQUIRE(from_raw.ok());
  CHECK(from_raw.value().name == "j-2.x_y");
  CHECK(from_raw.value().manager_name == "j-2.x_y");
}

TEST_CASE("credentials: exactly one of token, token file, password", "[jenkins][settings]") {
  Raw none = Minimal();
  none.erase("api_token");
  CHECK_THAT(Error(none), Catch::Contains("api_token: required"));

  Raw empty_token = With(Minimal(), "api_token", "");
  CHECK_THAT(Error(empty_token), Catch::Contains("api_token: empty"));

  Raw both = With(Minimal(), "api_token_file", "/nonexistent");
  CHECK_THAT(Error(both), Catch::Contains("api_token_file: only one of api_token, api_token_file and api_token_env"));

  Raw token_and_password = With(Minimal(), "password", kPassword);
  const std::string e = Error(token_and_password);
  CHECK_THAT(e, Catch::Contains("password: cannot be combined"));
  CHECK_THAT(e, !Catch::Contains(kPassword));
  CHECK_THAT(e, !Catch::Contains(kToken));

  Raw password = none;
  password["password"] = kPassword;
  const MasterSettings s = Parse(password);
  CHECK(s.password == kPassword);
  CHECK(s.api_token.empty());
  CHECK_THAT(Error(With(none, "password", "")), Catch::Contains("password: empty"));
}

TEST_CASE("api_token_file is read once and trimmed", "[jenkins][settings]") {
  TempFile file(std::string("  ") + kToken + "\r\n");
  Raw raw = Minimal();
  raw.erase("api_token");
  raw["api_token_file"] = file.path();
  const MasterSettings s = Parse(raw);
  CHECK(s.api_token == kToken);
  CHECK(s.api_token_file == file.path());

  Result<std::string> direct = ReadTokenFile(file.path());
  REQUIRE(direct.ok());
  CHECK(direct.value() == kToken);

  TempFile blank(" \n\t\n");
  raw["api_token_file"] = blank.path();
  CHECK_THAT(Error(raw), Catch::Contains("api_token_file: '" + blank.path() + "' is empty"));

  raw["api_token_file"] = "/nonexistent/roundhouse/token";
  const std::string missing = Error(raw);
  CHECK_THAT(missing,
             Catch::Contains("api_token_file: cannot read '/nonexistent/roundhouse/token'"));

  raw["api_token_file"] = "";
  CHECK_THAT(Error(raw), Catch::Contains("api_token_file: empty path"));

  TempFile huge(std::string(70000, 'x'));
  CHECK_FALSE(ReadTokenFile(huge.path()).ok());
}

TEST_CASE("admin settings cannot make the server read a path", "[jenkins][settings][secrets]") {
  TempFile outside(kToken);  // a file the server can read, e.g. a private key
  Raw raw = Minimal();
  raw.erase("api_token");
  raw["api_token_file"] = outside.path();
  // Operator-written settings may name any path.
  CHECK(Parse(raw).api_token == kToken);

  const SettingsTrust no_dir{false, {}};
  auto refused = ParseMasterSettings("jenkins01", raw, "admin", no_dir);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.status().message(),
             Catch::Contains("api_token_file: not accepted from the admin port"));
  CHECK_THAT(refused.status().message(), !Catch::Contains(kToken));

  // With a token directory: bare names inside it only.
  char dir_template[] = "/tmp/roundhouse-tokendir-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  const std::string inside = dir + "/ci1.token";
  {
    std::FILE* f = std::fopen(inside.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs("dir-token\n", f);
    std::fclose(f);
  }
  REQUIRE(symlink(outside.path().c_str(), (dir + "/link.token").c_str()) == 0);
  const SettingsTrust with_dir{false, dir};
  raw["api_token_file"] = "ci1.token";
  auto ok = ParseMasterSettings("jenkins01", raw, "admin", with_dir);
  REQUIRE(ok.ok());
  CHECK(ok.value().api_token == "dir-token");
  CHECK(ok.value().api_token_file == inside);
  CHECK(ok.value().api_token_file_in_dir);
  CHECK(ok.value().raw.at("api_token_file") == "ci1.token");  // stored as given, resolved again

  for (const std::string& bad : {outside.path(), std::string("../etc/shadow"), std::string("a/b"),
                                 std::string(".hidden"), std::string(".."), std::string("a b")}) {
    INFO(bad);
    raw["api_token_file"] = bad;
    auto r = ParseMasterSettings("jenkins01", raw, "admin", with_dir);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains("must be a file name inside --jenkins-token-dir"));
  }
  raw["api_token_file"] = "link.token";  // a symlink to a file outside the directory
  auto link = ParseMasterSettings("jenkins01", raw, "admin", with_dir);
  REQUIRE_FALSE(link.ok());
  CHECK_THAT(link.status().message(), Catch::Contains("symbolic link"));
  CHECK_THAT(link.status().message(), !Catch::Contains(kToken));

  // Nor an environment variable.
  Raw env = Minimal();
  env.erase("api_token");
  env["api_token_env"] = "HOME";
  auto env_refused = ParseMasterSettings("jenkins01", env, "admin", with_dir);
  REQUIRE_FALSE(env_refused.ok());
  CHECK_THAT(env_refused.status().message(), Catch::Contains("api_token_env: not accepted"));

  std::remove((dir + "/link.token").c_str());
  std::remove(inside.c_str());
  rmdir(dir.c_str());
}

TEST_CASE("token files that are not regular files are refused without blocking",
          "[jenkins][settings][secrets]") {
  for (const char* path : {"/dev/zero", "/dev/null", "/proc/self", "/tmp"}) {
    INFO(path);
    auto r = ReadTokenFile(path);
    CHECK_FALSE(r.ok());
  }
  char fifo[] = "/tmp/roundhouse-fifo-XXXXXX";
  const int fd = mkstemp(fifo);
  REQUIRE(fd >= 0);
  close(fd);
  std::remove(fifo);
  REQUIRE(mkfifo(fifo, 0600) == 0);
  auto r = ReadTokenFile(fifo);  // would wait for a writer forever without O_NONBLOCK
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::Contains("not a regular file"));
  std::remove(fifo);
}

TEST_CASE("api_token_env reads the token from the environment", "[jenkins][settings][secrets]") {
  Raw raw = Minimal();
  raw.erase("api_token");
  raw["api_token_env"] = "ROUNDHOUSE_TEST_TOKEN";
  ::setenv("ROUNDHOUSE_TEST_TOKEN", " env-token \n", 1);
  const MasterSettings s = Parse(raw);
  CHECK(s.api_token == "env-token");
  CHECK(s.ToRestOptions().api_token == "env-token");
  for (const auto& [k, v] : s.Describe()) CHECK_THAT(v, !Catch::Contains("env-token"));
  ::unsetenv("ROUNDHOUSE_TEST_TOKEN");
  CHECK_THAT(Error(raw), Catch::Contains("api_token_env: environment variable"));
  CHECK_THAT(Error(With(raw, "api_token", "x")), Catch::Contains("only one of"));
  CHECK(HasSecretInClear(Minimal()));
  CHECK_FALSE(HasSecretInClear(raw));
}

TEST_CASE("secrets never appear in errors or Describe", "[jenkins][settings]") {
  TempFile file(kToken);
  Raw with_file = Minimal();
  with_file.erase("api_token");
  with_file["api_token_file"] = file.path();
  for (const Raw& base : {Minimal(), with_file}) {
    for (const char* key : {"weight", "pin_mode", "tls.verify", "poll.jobs_s", "bogus"}) {
      const std::string e = Error(With(base, key, "false"));
      CHECK_THAT(e, !Catch::Contains(kToken));
    }
    const MasterSettings s = Parse(base);
    for (const auto& [key, value] : s.Describe()) {
      INFO(key << " = " << value);
      CHECK_THAT(value, !Catch::Contains(kToken));
    }
  }
}

TEST_CASE("Describe lists every key in order with secrets hidden", "[jenkins][settings]") {
  Raw raw = Minimal();
  raw["poll.computers_s"] = "0.2";
  raw["pin_mode"] = "label:GEARMAN_LABEL";
  raw["flyweight_labels"] = "b=x;a=y";
  raw["job_include"] = "^gate-";
  const auto lines = Parse(raw).Describe();
  const auto& keys = MasterSettingKeys();
  REQUIRE(lines.size() == keys.size());
  for (size_t i = 0; i < keys.size(); ++i) CHECK(lines[i].first == keys[i]);
  std::map<std::string, std::string> m(lines.begin(), lines.end());
  CHECK(m["api_token"] == "(set)");
  CHECK(m["password"] == "(unset)");
  CHECK(m["base_url"] == "http://jenkins01.example.org/");
  CHECK(m["poll.computers_s"] == "0.2");
  CHECK(m["poll.node_modes_s"] == "300");
  CHECK(m["pin_mode"] == "label:GEARMAN_LABEL");
  CHECK(m["flyweight_labels"] == "a=y;b=x");
  CHECK(m["job_include"] == "^gate-");
  CHECK(m["job_exclude"] == "(none)");
  CHECK(m["enabled"] == "true");
  CHECK(m["offline_timing"] == "(default)");

  Raw password = Minimal();
  password.erase("api_token");
  password["password"] = kPassword;
  std::map<std::string, std::string> p;
  for (const auto& [k, v] : Parse(password).Describe()) p[k] = v;
  CHECK(p["password"] == "(set)");
  CHECK(p["api_token"] == "(unset)");
}

TEST_CASE("the key list is that of doc/jenkins.md §4.1, without duplicates", "[jenkins][settings]") {
  const auto& keys = MasterSettingKeys();
  CHECK(keys.size() == 52);  // 49 + tls.cert_file, tls.key_file, proxy (doc/jenkins-http.md)
  CHECK(std::set<std::string_view>(keys.begin(), keys.end()).size() == keys.size());
  CHECK(keys.front() == "name");
  CHECK(keys.back() == "resume_window_s");
}

TEST_CASE("tls files: https only, operator-written only, a key needs a certificate",
          "[jenkins][settings]") {
  TempFile pem("-----BEGIN CERTIFICATE-----\n");
  const Raw https = With(Minimal(), "base_url", "https://ci.example.org/");
  CHECK_THAT(Error(With(Minimal(), "tls.ca_file", pem.path())),
             Catch::Contains("tls.ca_file: only for an https:// base_url"));
  CHECK_THAT(Error(With(https, "tls.key_file", pem.path())),
             Catch::Contains("tls.key_file: needs tls.cert_file"));
  const SettingsTrust admin{false, "/tmp"};
  for (const char* key : {"tls.ca_file", "tls.cert_file", "tls.key_file"}) {
    INFO(key);
    auto r = ParseMasterSettings("jenkins01", With(https, key, pem.path()), "admin", admin);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(),
               Catch::Contains(std::string(key) + ": not accepted from the admin port"));
  }
  // The admin port may choose verification and the proxy: they name no file.
  Raw admin_ok = With(https, "tls.verify", "false");
  admin_ok["proxy"] = "none";
  auto r = ParseMasterSettings("jenkins01", admin_ok, "admin", admin);
  REQUIRE(r.ok());
  std::map<std::string, std::string> d;
  for (const auto& [k, v] : r.value().Describe()) d[k] = v;
  CHECK_THAT(d["tls.verify"], Catch::StartsWith("false (WARNING: "));
  CHECK(d["proxy"] == "none");
  CHECK(d["tls.ca_file"] == "(system store)");

  Raw full = With(https, "tls.ca_file", pem.path());
  full["tls.cert_file"] = pem.path();
  full["proxy"] = "http://p:3128";
  const RestOptions o = Parse(full).ToRestOptions();
  CHECK(o.http.tls.enabled);
  CHECK(o.http.tls.verify);
  CHECK(o.http.tls.ca_file == pem.path());
  CHECK(o.http.tls.cert_file == pem.path());
  CHECK(o.http.tls.key_file.empty());
  CHECK(o.http.proxy == "http://p:3128");
  CHECK(o.base.port == 443);
}

TEST_CASE("ToRestOptions carries credentials and HTTP settings", "[jenkins][settings]") {
  Raw raw = With(Minimal(), "base_url", "http://ci.example.org:8080/jenkins/");
  raw["http.connect_timeout_s"] = "2.5";
  raw["http.timeout_s"] = "30";
  raw["http.max_concurrency"] = "4";
  const RestOptions o = Parse(raw).ToRestOptions();
  CHECK(o.base.host == "ci.example.org");
  CHECK(o.base.path == "/jenkins/");
  CHECK(o.user == "gearman");
  CHECK(o.api_token == kToken);
  CHECK(o.password.empty());
  CHECK(o.http.host == "ci.example.org");
  CHECK(o.http.port == 8080);
  CHECK(o.http.connect_timeout_ms == 2500);
  CHECK(o.http.request_timeout_ms == 30000);
  CHECK(o.http.max_concurrency == 4);
}

}  // namespace
}  // namespace roundhouse::jenkins
