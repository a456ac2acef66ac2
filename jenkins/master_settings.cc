// Master settings (doc/jenkins.md §4.1): see master_settings.h.

#include "jenkins/master_settings.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "base/text.h"
#include "jenkins/name_filter.h"

namespace roundhouse::jenkins {
namespace {

constexpr size_t kMaxNameBytes = 64;
constexpr size_t kMaxManagerNameBytes = 128;
constexpr size_t kMaxParameterNameBytes = 128;
constexpr size_t kMaxRegexBytes = 1024;
constexpr size_t kMaxOfflineMessageBytes = 1024;
constexpr size_t kMaxTokenFileBytes = 64 * 1024;
// Any duration above this many seconds is refused (about 11.5 days), so milliseconds never
// overflow and typos like `poll.jobs_s = 60000000` are caught.
constexpr int64_t kMaxSeconds = 1000000;

// A value for an error text, quoted (ErrorExcerpt). Never used for secrets.
std::string Printable(std::string_view s) { return "'" + ErrorExcerpt(s) + "'"; }

bool HasControlOrSpace(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c <= 0x20 || c == 0x7F;
  });
}

bool IsValidMasterName(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameBytes) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string_view TrimBlank(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

std::optional<bool> ParseBoolText(std::string_view text) {
  const std::string v = ToLowerAscii(text);
  if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return false;
  return std::nullopt;
}

std::optional<int64_t> ParseUnsigned(std::string_view text) {
  if (text.empty() || text.front() == '-') return std::nullopt;
  return ParseDecimal<int64_t>(text);
}

// "<digits>[.<1-3 digits>]" seconds -> milliseconds; nullopt when malformed or too large.
std::optional<int64_t> ParseSecondsText(std::string_view text) {
  const size_t dot = text.find('.');
  std::optional<int64_t> whole = ParseUnsigned(text.substr(0, dot));
  if (!whole || *whole > kMaxSeconds) return std::nullopt;
  int64_t ms = *whole * 1000;
  if (dot != std::string_view::npos) {
    const std::string_view frac = text.substr(dot + 1);
    if (frac.empty() || frac.size() > 3) return std::nullopt;
    int64_t scale = 100;
    for (char c : frac) {
      if (c < '0' || c > '9') return std::nullopt;
      ms += (c - '0') * scale;
      scale /= 10;
    }
  }
  return ms;
}

std::string FormatSeconds(int64_t ms) {
  std::string out = std::to_string(ms / 1000);
  int64_t rest = ms % 1000;
  if (rest != 0) {
    std::string frac = std::to_string(rest);
    frac.insert(0, 3 - frac.size(), '0');
    while (frac.back() == '0') frac.pop_back();
    out += "." + frac;
  }
  return out;
}

const char* BoolText(bool b) { return b ? "true" : "false"; }

// One master's raw pairs being validated; errors carry the "<origin>: jenkins master '<name>': "
// prefix.
class SettingsParser {
 public:
  SettingsParser(std::string prefix, const std::map<std::string, std::string>& raw)
      : prefix_(std::move(prefix)), raw_(raw) {}

  const std::string* Get(std::string_view key) const {
    auto it = raw_.find(std::string(key));
    return it == raw_.end() ? nullptr : &it->second;
  }

  Status Fail(std::string_view key, std::string_view problem) const {
    return Status::Error(prefix_ + std::string(key) + ": " + std::string(problem));
  }

  Status Bool(std::string_view key, bool* out) const {
    const std::string* v = Get(key);
    if (v == nullptr) return Status::Ok();
    std::optional<bool> b = ParseBoolText(*v);
    if (!b) return Fail(key, Printable(*v) + " is not a boolean (true/false/yes/no/on/off/1/0)");
    *out = *b;
    return Status::Ok();
  }

  template <typename Int>
  Status Integer(std::string_view key, int64_t min, int64_t max, Int* out) const {
    const std::string* v = Get(key);
    if (v == nullptr) return Status::Ok();
    std::optional<int64_t> n = ParseUnsigned(*v);
    if (!n || *n < min || *n > max) {
      return Fail(key, Printable(*v) + " is not an integer from " + std::to_string(min) + " to " +
                           std::to_string(max));
    }
    *out = static_cast<Int>(*n);
    return Status::Ok();
  }

  // Seconds with up to millisecond precision, stored as milliseconds.
  Status Seconds(std::string_view key, bool zero_ok, int64_t* out_ms) const {
    const std::string* v = Get(key);
    if (v == nullptr) return Status::Ok();
    std::optional<int64_t> ms = ParseSecondsText(*v);
    if (!ms) {
      return Fail(key, Printable(*v) + " is not a number of seconds (e.g. 5 or 0.25, at most " +
                           std::to_string(kMaxSeconds) + ")");
    }
    if (*ms == 0 && !zero_ok) return Fail(key, "must be greater than 0");
    *out_ms = *ms;
    return Status::Ok();
  }

  template <typename E>
  Status Enum(std::string_view key, std::initializer_list<std::pair<const char*, E>> choices,
              E* out) const {
    const std::string* v = Get(key);
    if (v == nullptr) return Status::Ok();
    std::string names;
    for (const auto& [text, value] : choices) {
      if (*v == text) {
        *out = value;
        return Status::Ok();
      }
      names += names.empty() ? "" : " or ";
      names += text;
    }
    return Fail(key, Printable(*v) + " is not one of " + names);
  }

  // A Jenkins parameter name: non-empty, no whitespace or control bytes.
  Status ParameterName(std::string_view key, std::string_view value, std::string* out) const {
    if (value.empty() || value.size() > kMaxParameterNameBytes || HasControlOrSpace(value)) {
      return Fail(key, Printable(value) + " is not a valid parameter name");
    }
    *out = std::string(value);
    return Status::Ok();
  }

  Status Regex(std::string_view key, std::optional<std::string>* out) const {
    const std::string* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (v->empty()) return Fail(key, "empty regular expression");
    if (v->size() > kMaxRegexBytes) {
      return Fail(key,
                  "regular expression longer than " + std::to_string(kMaxRegexBytes) + " bytes");
    }
    if (auto compiled = NameFilter::Compile(*v); !compiled.ok()) {
      return Fail(key, Printable(*v) + " is not a valid regular expression (" +
                           compiled.status().message() + ")");
    }
    *out = *v;
    return Status::Ok();
  }

 private:
  std::string prefix_;
  const std::map<std::string, std::string>& raw_;
};

Status ParseFlyweightLabels(const SettingsParser& p, std::map<std::string, std::string>* out) {
  const std::string* v = p.Get("flyweight_labels");
  if (v == nullptr) return Status::Ok();
  std::string_view rest = *v;
  while (!rest.empty()) {
    const size_t semi = rest.find(';');
    const std::string_view pair = TrimBlank(rest.substr(0, semi));
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      return p.Fail("flyweight_labels", Printable(pair) + " is not fullName=expression");
    }
    const std::string job(TrimBlank(pair.substr(0, eq)));
    const std::string expr(TrimBlank(pair.substr(eq + 1)));
    if (job.empty()) return p.Fail("flyweight_labels", "empty job name in " + Printable(pair));
    if (expr.empty()) {
      return p.Fail("flyweight_labels", "empty label expression for " + Printable(job));
    }
    if (!out->emplace(job, expr).second) {
      return p.Fail("flyweight_labels", Printable(job) + " is given twice");
    }
  }
  return Status::Ok();
}

// Everything except name, credentials and base_url.
Status ParseTuning(const SettingsParser& p, MasterSettings* s) {
  Status st;
  auto run = [&st](Status next) {
    if (st.ok()) st = std::move(next);
  };
  run(p.Bool("enabled", &s->enabled));
  run(p.Integer("weight", 1, 1000, &s->weight));
  if (const std::string* v = p.Get("pin_mode"); v != nullptr && st.ok()) {
    std::string_view mode = *v;
    if (mode == "label-only") {
      s->pin_mode = PinMode::kLabelOnly;
      s->pin_parameter.clear();
    } else if (mode.starts_with("node:") || mode.starts_with("label:")) {
      const bool node = mode.starts_with("node:");
      s->pin_mode = node ? PinMode::kNode : PinMode::kLabel;
      st = p.ParameterName("pin_mode", mode.substr(node ? 5 : 6), &s->pin_parameter);
    } else {
      st = p.Fail("pin_mode", Printable(mode) + " is not node:<P>, label:<P> or label-only");
    }
  }
  if (const std::string* v = p.Get("unique_param"); v != nullptr && st.ok()) {
    st = p.ParameterName("unique_param", *v, &s->unique_param);
  }
  run(p.Enum("param_policy", {{"drop", ParamPolicy::kDrop}, {"strict", ParamPolicy::kStrict}},
             &s->param_policy));
  run(p.Enum("function_naming",
             {{"short", FunctionNaming::kShort}, {"full", FunctionNaming::kFull}},
             &s->function_naming));
  run(p.Integer("folder_depth", 0, 10, &s->folder_depth));
  run(p.Regex("job_include", &s->job_include));
  run(p.Regex("job_exclude", &s->job_exclude));
  run(p.Regex("name_filter", &s->name_filter));
  if (st.ok()) st = ParseFlyweightLabels(p, &s->flyweight_labels);
  run(p.Enum("label_eval", {{"local", LabelEval::kLocal}, {"remote", LabelEval::kRemote}},
             &s->label_eval));
  if (st.ok() && s->label_eval == LabelEval::kRemote) {
    st = p.Fail("label_eval", "remote evaluation (R6) is not built yet; only local is accepted");
  }
  run(p.Bool("emit_worker_fields", &s->emit_worker_fields));

  run(p.Seconds("poll.computers_s", false, &s->poll_computers_ms));
  run(p.Seconds("poll.computers_idle_s", false, &s->poll_computers_idle_ms));
  run(p.Seconds("poll.jobs_s", false, &s->poll_jobs_ms));
  run(p.Seconds("poll.node_modes_s", false, &s->poll_node_modes_ms));
  run(p.Seconds("poll.queue_item_s", false, &s->poll_queue_item_ms));
  run(p.Seconds("poll.build_s", false, &s->poll_build_ms));
  run(p.Seconds("poll.build_max_s", false, &s->poll_build_max_ms));
  if (st.ok() && s->poll_build_max_ms < s->poll_build_ms) {
    st = p.Fail(p.Get("poll.build_max_s") != nullptr ? "poll.build_max_s" : "poll.build_s",
                "poll.build_max_s must not be less than poll.build_s");
  }
  run(p.Seconds("poll.health_s", false, &s->poll_health_ms));
  run(p.Seconds("http.connect_timeout_s", false, &s->http_connect_timeout_ms));
  run(p.Seconds("http.timeout_s", false, &s->http_timeout_ms));
  run(p.Integer("http.max_concurrency", 1, 64, &s->http_max_concurrency));

  run(p.Integer("max_inflight_starts", 1, 100000, &s->max_inflight_starts));
  run(p.Seconds("queue_wait_timeout_s", false, &s->queue_wait_timeout_ms));
  run(p.Seconds("contention_cooldown_s", true, &s->contention_cooldown_ms));
  run(p.Integer("max_requeues", 0, 1000, &s->max_requeues));
  run(p.Integer("unhealthy_after", 1, 1000, &s->unhealthy_after));
  run(p.Seconds("inflight_grace_s", true, &s->inflight_grace_ms));
  run(p.Enum("node_lost_policy",
             {{"retry", NodeLostPolicy::kRetry}, {"report", NodeLostPolicy::kReport}},
             &s->node_lost_policy));
  run(p.Seconds("node_lost_window_s", true, &s->node_lost_window_ms));
  run(p.Enum("restart_policy",
             {{"retry", RestartPolicy::kRetry}, {"report", RestartPolicy::kReport}},
             &s->restart_policy));
  if (const std::string* v = p.Get("offline_timing"); v != nullptr && st.ok()) {
    OfflineTiming timing = OfflineTiming::kOnStart;
    st =
        p.Enum("offline_timing",
               {{"on-start", OfflineTiming::kOnStart}, {"on-complete", OfflineTiming::kOnComplete}},
               &timing);
    if (st.ok()) s->offline_timing = timing;
  }
  if (const std::string* v = p.Get("offline_message"); v != nullptr && st.ok()) {
    const bool control = std::any_of(v->begin(), v->end(), [](char ch) {
      const auto c = static_cast<unsigned char>(ch);
      return c < 0x20 || c == 0x7F;
    });
    if (v->empty() || v->size() > kMaxOfflineMessageBytes || control) {
      st = p.Fail("offline_message", "must be 1 to " + std::to_string(kMaxOfflineMessageBytes) +
                                         " bytes without control characters");
    } else {
      s->offline_message = *v;
    }
  }
  run(p.Seconds("stop_escalation_s", true, &s->stop_escalation_ms));
  run(p.Seconds("meta_timeout_s", false, &s->meta_timeout_ms));
  run(p.Enum("orphan_policy", {{"abort", OrphanPolicy::kAbort}, {"ignore", OrphanPolicy::kIgnore}},
             &s->orphan_policy));
  run(p.Seconds("resume_window_s", true, &s->resume_window_ms));
  return st;
}

// The file an untrusted source's `api_token_file` value names, or an error (SettingsTrust).
Result<std::string> ResolveUntrustedTokenFile(const std::string& value, const SettingsTrust& trust) {
  if (trust.token_dir.empty()) {
    return Status::Error(
        "not accepted from the admin port (it would make the server read a path): give the token "
        "as api_token, or start roundhouse with --jenkins-token-dir DIR and name a file in DIR");
  }
  if (value.find('/') != std::string::npos || value.front() == '.' ||
      value.size() > 255 || HasControlOrSpace(value)) {
    return Status::Error("must be a file name inside --jenkins-token-dir (no '/', not starting "
                         "with '.', no whitespace)");
  }
  std::string path = trust.token_dir;
  if (path.back() != '/') path.push_back('/');
  return path + value;
}

// A file the operator named for TLS: it must be a readable regular file now, so that a typo is
// an error at registration rather than a DOWN master later.
Status CheckReadableFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::Error("cannot read " + Printable(path) + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return Status::Error(Printable(path) + " is not a regular file");
  if (::access(path.c_str(), R_OK) != 0) {
    return Status::Error("cannot read " + Printable(path) + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

// tls.* and proxy (doc/jenkins-http.md). The three tls files name paths the server reads, so
// like api_token_file they come only from what the operator wrote; the admin port may choose
// tls.verify and proxy, which name no file.
Status ParseTransport(const SettingsParser& p, const SettingsTrust& trust, MasterSettings* s) {
  Status st = p.Bool("tls.verify", &s->tls_verify);
  if (!st.ok()) return st;
  struct FileKey {
    const char* key;
    std::string* out;
  };
  for (const FileKey& f :
       {FileKey{"tls.ca_file", &s->tls_ca_file}, FileKey{"tls.cert_file", &s->tls_cert_file},
        FileKey{"tls.key_file", &s->tls_key_file}}) {
    const std::string* v = p.Get(f.key);
    if (v == nullptr) continue;
    if (!trust.operator_written) {
      return p.Fail(f.key,
                    "not accepted from the admin port (it would make the server read a "
                    "path): set it in the config file or on the command line");
    }
    if (v->empty()) return p.Fail(f.key, "empty path");
    st = CheckReadableFile(*v);
    if (!st.ok()) return p.Fail(f.key, st.message());
    *f.out = *v;
  }
  if (!s->tls_key_file.empty() && s->tls_cert_file.empty()) {
    return p.Fail("tls.key_file", "needs tls.cert_file");
  }
  if (!s->base_url.tls) {
    if (!s->tls_verify) return p.Fail("tls.verify", "only for an https:// base_url");
    for (const char* key : {"tls.ca_file", "tls.cert_file", "tls.key_file"}) {
      if (p.Get(key) != nullptr) return p.Fail(key, "only for an https:// base_url");
    }
  }
  if (const std::string* v = p.Get("proxy")) {
    const std::string_view proxy = *v;
    if (proxy != "none") {
      if (!(proxy.starts_with("http://") || proxy.starts_with("https://")) || proxy.size() > 1024 ||
          HasControlOrSpace(proxy)) {
        return p.Fail("proxy", Printable(proxy) +
                                   " is not none, http://HOST:PORT or "
                                   "https://HOST:PORT");
      }
      if (proxy.find('@') != std::string_view::npos) {
        return p.Fail("proxy",
                      "must not contain credentials (the https_proxy environment "
                      "variable may)");
      }
    }
    s->proxy = *v;
  }
  return Status::Ok();
}

// user, api_token / api_token_file / password: exactly one secret source.
Status ParseCredentials(const SettingsParser& p, const SettingsTrust& trust, MasterSettings* s) {
  const std::string* user = p.Get("user");
  if (user == nullptr || user->empty()) return p.Fail("user", "required");
  if (HasControlOrSpace(*user) || user->find(':') != std::string::npos) {
    return p.Fail("user", "must not contain ':', whitespace or control characters");
  }
  s->user = *user;
  const std::string* token = p.Get("api_token");
  const std::string* file = p.Get("api_token_file");
  const std::string* env = p.Get("api_token_env");
  const std::string* password = p.Get("password");
  const int sources = (token != nullptr) + (file != nullptr) + (env != nullptr);
  if (sources > 1) {
    return p.Fail(file != nullptr ? "api_token_file" : "api_token_env",
                  "only one of api_token, api_token_file and api_token_env may be given");
  }
  if (password != nullptr && sources > 0) {
    return p.Fail("password", "cannot be combined with api_token, api_token_file or api_token_env");
  }
  if (sources == 0 && password == nullptr) {
    return p.Fail("api_token",
                  "required (or api_token_file / api_token_env; password mode is discouraged)");
  }
  if (env != nullptr) {
    // An admin could otherwise have any of the server's environment sent to any URL.
    if (!trust.operator_written) {
      return p.Fail("api_token_env", "not accepted from the admin port");
    }
    if (env->empty()) return p.Fail("api_token_env", "empty variable name");
    const char* value = std::getenv(env->c_str());
    const std::string_view trimmed = value == nullptr ? std::string_view() : TrimBlank(value);
    if (trimmed.empty()) {
      return p.Fail("api_token_env", "environment variable " + Printable(*env) + " is unset or empty");
    }
    s->api_token = std::string(trimmed);
    s->api_token_env = *env;
  }
  if (token != nullptr) {
    if (token->empty()) return p.Fail("api_token", "empty");
    s->api_token = *token;
  }
  if (file != nullptr) {
    if (file->empty()) return p.Fail("api_token_file", "empty path");
    std::string path = *file;
    if (!trust.operator_written) {
      Result<std::string> resolved = ResolveUntrustedTokenFile(*file, trust);
      if (!resolved.ok()) return p.Fail("api_token_file", resolved.status().message());
      path = std::move(resolved).value();
      s->api_token_file_in_dir = true;
    }
    Result<std::string> read = ReadTokenFile(path, s->api_token_file_in_dir);
    if (!read.ok()) return p.Fail("api_token_file", read.status().message());
    s->api_token_file = std::move(path);
    s->api_token = std::move(read).value();
  }
  if (password != nullptr) {
    if (password->empty()) return p.Fail("password", "empty");
    s->password = *password;
  }
  return Status::Ok();
}

}  // namespace

const std::vector<std::string_view>& MasterSettingKeys() {
  static const std::vector<std::string_view> keys = {
      "name",
      "base_url",
      "user",
      "api_token",
      "api_token_file",
      "api_token_env",
      "password",
      "manager_name",
      "enabled",
      "weight",
      "pin_mode",
      "unique_param",
      "param_policy",
      "function_naming",
      "folder_depth",
      "job_include",
      "job_exclude",
      "name_filter",
      "flyweight_labels",
      "label_eval",
      "emit_worker_fields",
      "poll.computers_s",
      "poll.computers_idle_s",
      "poll.jobs_s",
      "poll.node_modes_s",
      "poll.queue_item_s",
      "poll.build_s",
      "poll.build_max_s",
      "poll.health_s",
      "http.connect_timeout_s",
      "http.timeout_s",
      "http.max_concurrency",
      "tls.verify",
      "tls.ca_file",
      "tls.cert_file",
      "tls.key_file",
      "proxy",
      "max_inflight_starts",
      "queue_wait_timeout_s",
      "contention_cooldown_s",
      "max_requeues",
      "unhealthy_after",
      "inflight_grace_s",
      "node_lost_policy",
      "node_lost_window_s",
      "restart_policy",
      "offline_timing",
      "offline_message",
      "stop_escalation_s",
      "meta_timeout_s",
      "orphan_policy",
      "resume_window_s",
  };
  return keys;
}

Result<std::string> ReadTokenFile(const std::string& path, bool no_follow) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
  const int fd = ::open(path.c_str(),
                        O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (no_follow ? O_NOFOLLOW : 0));
  if (fd < 0) {
    const int err = errno;
    if (no_follow && err == ELOOP) return Status::Error(Printable(path) + " is a symbolic link");
    return Status::Error("cannot read " + Printable(path) + ": " + std::strerror(err));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::Error(Printable(path) + " is not a regular file");
  }
  if (st.st_size > static_cast<off_t>(kMaxTokenFileBytes)) {
    return Status::Error(Printable(path) + " is larger than " +
                         std::to_string(kMaxTokenFileBytes) + " bytes");
  }
  std::string contents;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Error("cannot read " + Printable(path) + ": " + std::strerror(errno));
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
    if (contents.size() > kMaxTokenFileBytes) {
      return Status::Error(Printable(path) + " is larger than " +
                           std::to_string(kMaxTokenFileBytes) + " bytes");
    }
  }
  const std::string_view token = TrimBlank(contents);
  if (token.empty()) return Status::Error(Printable(path) + " is empty");
  return std::string(token);
}

Result<MasterSettings> ParseMasterSettings(std::string_view name,
                                           const std::map<std::string, std::string>& raw,
                                           std::string_view origin,
                                           const SettingsTrust& trust) {
  auto name_it = raw.find("name");
  std::string_view effective = name;
  if (effective.empty() && name_it != raw.end()) effective = name_it->second;
  const std::string prefix =
      std::string(origin) + ": jenkins master " + Printable(effective) + ": ";
  SettingsParser p(prefix, raw);
  if (!IsValidMasterName(effective)) {
    return p.Fail("name",
                  "must be 1 to " + std::to_string(kMaxNameBytes) + " bytes of A-Z a-z 0-9 . _ -");
  }
  if (name_it != raw.end() && name_it->second != effective) {
    return p.Fail("name", Printable(name_it->second) + " differs from the master's name");
  }
  for (const auto& [key, value] : raw) {
    const auto& keys = MasterSettingKeys();
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      return p.Fail(Printable(key), "unknown setting");
    }
  }

  MasterSettings s;
  s.name = std::string(effective);
  s.raw = raw;

  const std::string* url = p.Get("base_url");
  if (url == nullptr || url->empty()) return p.Fail("base_url", "required");
  Result<BaseUrl> base = ParseBaseUrl(*url);
  if (!base.ok()) return p.Fail("base_url", base.status().message());
  s.base_url = std::move(base).value();

  Status st = ParseCredentials(p, trust, &s);
  if (!st.ok()) return st;
  st = ParseTransport(p, trust, &s);
  if (!st.ok()) return st;

  s.manager_name = s.name;
  if (const std::string* m = p.Get("manager_name")) {
    if (m->empty() || m->size() > kMaxManagerNameBytes || HasControlOrSpace(*m)) {
      return p.Fail("manager_name", Printable(*m) + " must be 1 to " +
                                        std::to_string(kMaxManagerNameBytes) +
                                        " bytes without whitespace or control characters");
    }
    s.manager_name = *m;
  }

  st = ParseTuning(p, &s);
  if (!st.ok()) return st;
  return s;
}

bool HasSecretInClear(const std::map<std::string, std::string>& raw) {
  return raw.count("api_token") != 0 || raw.count("password") != 0;
}

RestOptions MasterSettings::ToRestOptions() const {
  RestOptions o;
  o.base = base_url;
  o.user = user;
  o.api_token = api_token;
  o.password = password;
  o.http.host = base_url.host;
  o.http.port = base_url.port;
  o.http.connect_timeout_ms = http_connect_timeout_ms;
  o.http.request_timeout_ms = http_timeout_ms;
  o.http.max_concurrency = http_max_concurrency;
  o.http.tls.enabled = base_url.tls;
  o.http.tls.verify = tls_verify;
  o.http.tls.ca_file = tls_ca_file;
  o.http.tls.cert_file = tls_cert_file;
  o.http.tls.key_file = tls_key_file;
  o.http.proxy = proxy;
  return o;
}

std::vector<std::pair<std::string, std::string>> MasterSettings::Describe() const {
  auto secret = [](const std::string& v) { return std::string(v.empty() ? "(unset)" : "(set)"); };
  auto optional = [](const std::optional<std::string>& v) {
    return v ? *v : std::string("(none)");
  };
  std::string pin;
  switch (pin_mode) {
    case PinMode::kNode:
      pin = "node:" + pin_parameter;
      break;
    case PinMode::kLabel:
      pin = "label:" + pin_parameter;
      break;
    case PinMode::kLabelOnly:
      pin = "label-only";
      break;
  }
  std::string flyweight;
  for (const auto& [job, expr] : flyweight_labels) {
    if (!flyweight.empty()) flyweight += ';';
    flyweight += job + "=" + expr;
  }
  std::string timing = "(default)";
  if (offline_timing)
    timing = *offline_timing == OfflineTiming::kOnStart ? "on-start" : "on-complete";
  const char* retry_report[] = {"retry", "report"};
  return {
      {"name", name},
      {"base_url", base_url.text},
      {"user", user},
      {"api_token", secret(api_token)},
      {"api_token_file", api_token_file},
      {"api_token_env", api_token_env},
      {"password", secret(password)},
      {"manager_name", manager_name},
      {"enabled", BoolText(enabled)},
      {"weight", std::to_string(weight)},
      {"pin_mode", pin},
      {"unique_param", unique_param},
      {"param_policy", param_policy == ParamPolicy::kDrop ? "drop" : "strict"},
      {"function_naming", function_naming == FunctionNaming::kShort ? "short" : "full"},
      {"folder_depth", std::to_string(folder_depth)},
      {"job_include", optional(job_include)},
      {"job_exclude", optional(job_exclude)},
      {"name_filter", optional(name_filter)},
      {"flyweight_labels", flyweight},
      {"label_eval", label_eval == LabelEval::kLocal ? "local" : "remote"},
      {"emit_worker_fields", BoolText(emit_worker_fields)},
      {"poll.computers_s", FormatSeconds(poll_computers_ms)},
      {"poll.computers_idle_s", FormatSeconds(poll_computers_idle_ms)},
      {"poll.jobs_s", FormatSeconds(poll_jobs_ms)},
      {"poll.node_modes_s", FormatSeconds(poll_node_modes_ms)},
      {"poll.queue_item_s", FormatSeconds(poll_queue_item_ms)},
      {"poll.build_s", FormatSeconds(poll_build_ms)},
      {"poll.build_max_s", FormatSeconds(poll_build_max_ms)},
      {"poll.health_s", FormatSeconds(poll_health_ms)},
      {"http.connect_timeout_s", FormatSeconds(http_connect_timeout_ms)},
      {"http.timeout_s", FormatSeconds(http_timeout_ms)},
      {"http.max_concurrency", std::to_string(http_max_concurrency)},
      {"tls.verify", tls_verify ? "true" : kTlsVerifyOffWarning},
      {"tls.ca_file", tls_ca_file.empty() ? "(system store)" : tls_ca_file},
      {"tls.cert_file", tls_cert_file.empty() ? "(none)" : tls_cert_file},
      {"tls.key_file", tls_key_file.empty() ? "(none)" : tls_key_file},
      {"proxy", proxy.empty() ? "(environment)" : proxy},
      {"max_inflight_starts", std::to_string(max_inflight_starts)},
      {"queue_wait_timeout_s", FormatSeconds(queue_wait_timeout_ms)},
      {"contention_cooldown_s", FormatSeconds(contention_cooldown_ms)},
      {"max_requeues", std::to_string(max_requeues)},
      {"unhealthy_after", std::to_string(unhealthy_after)},
      {"inflight_grace_s", FormatSeconds(inflight_grace_ms)},
      {"node_lost_policy", retry_report[node_lost_policy == NodeLostPolicy::kRetry ? 0 : 1]},
      {"node_lost_window_s", FormatSeconds(node_lost_window_ms)},
      {"restart_policy", retry_report[restart_policy == RestartPolicy::kRetry ? 0 : 1]},
      {"offline_timing", timing},
      {"offline_message", offline_message},
      {"stop_escalation_s", FormatSeconds(stop_escalation_ms)},
      {"meta_timeout_s", FormatSeconds(meta_timeout_ms)},
      {"orphan_policy", orphan_policy == OrphanPolicy::kAbort ? "abort" : "ignore"},
      {"resume_window_s", FormatSeconds(resume_window_ms)},
  };
}

}  // namespace roundhouse::jenkins
