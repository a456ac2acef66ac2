#include "tools/loadgen/options.h"

#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/text.h"

namespace roundhouse::loadgen {
namespace {

constexpr std::string_view kUsage = R"(usage: rh-loadgen [options]

Raw-protocol Gearman load generator: one process drives many client and worker connections.
Prints one JSON line with the results on stdout and a human summary on stderr. Exit status:
0 ok, 1 protocol errors or lost connections, 2 hard timeout, 64 bad usage.

Modes:
  --mode bg|fg|latency   bg: SUBMIT_JOB_BG, each client keeps --window submits unacknowledged;
                         counts jobs completed by the workers (JOB_CREATED if --workers 0).
                         fg: SUBMIT_JOB, each client keeps --window jobs in flight, counts
                         WORK_COMPLETE. latency: fg with one job in flight per client.
  --submit-only          bg submits, no workers; counts JOB_CREATED.
  --drain                workers only: consume until no job arrives for --idle-exit-ms.

Server and connections:
  --host H               server address (127.0.0.1)
  --port P               server port (4730)
  --clients N            client connections (1)
  --workers N            worker connections (1; 0 with --submit-only)
  --window W             jobs in flight per client (100)
  --threads N            event-loop threads; connections are split round-robin (1)
  --idle-connections N   extra connections that send CAN_DO --idle-function, GRAB_JOB, then
                         PRE_SLEEP, and stay silent (NOOPs are counted, never answered)
  --idle-function NAME   function the idle connections register (rh_idle)
  --connect-concurrency N  connections opening at once per thread, counted until the
                         server answered their registration (32, gearmand's listen backlog)
  --tls                  speak TLS (1.2 or 1.3) on every connection; the handshake is done at
                         connect time, before measuring
  --tls-ca FILE          with --tls: verify the server's certificate against FILE (default:
                         no verification; this is a load generator)

Bounds (always bounded in time):
  --jobs TOTAL           run until TOTAL jobs are done
  --seconds S            measure for S seconds (default 10 when --jobs is not given)
  --warmup S             run S seconds before measuring (--seconds only; 0)
  --timeout S            hard limit for the whole run (default: seconds + warmup + 30, or 300
                         with --jobs or --drain; plus 10 ms per connection)
  --backlog N            bg with workers: pause submitting while more than N submitted jobs
                         are not yet completed (10000; 0 = unbounded)

Jobs:
  --payload BYTES        workload size (64)
  --functions K          spread jobs round-robin over K functions (1)
  --function-prefix S    function names are S0..S(K-1) (gload_)
  --unique none|uuid|seq unique id per job (none)
  --priority normal|high|low|mixed   (normal; mixed cycles high, normal, low)
  --result empty|echo    what workers send back in WORK_COMPLETE (empty)
  --worker-mode grab     workers: CAN_DO each function, GRAB_JOB, WORK_COMPLETE, GRAB_JOB;
                         NO_JOB -> PRE_SLEEP, wait for NOOP (the only mode)

Records (crash and durability tests):
  --record FILE          --submit-only: every acknowledged job; --drain: every job received
                         (via GRAB_JOB_UNIQ). One line per job: HANDLE<TAB>UNIQUE, written to the
                         file as soon as it is known. Backslash, tab and newline are escaped.
  --idle-exit-ms MS      --drain: stop after MS without a job (1000)
)";

// One flag's parser; `value` is empty for switches.
using Setter = std::function<Status(std::string_view value)>;

struct Flag {
  bool takes_value;
  Setter set;
};

template <typename T>
Status ParseInteger(std::string_view name, std::string_view value, T min, T max, T* out) {
  const std::optional<T> parsed = ParseDecimal<T>(value);
  if (!parsed || *parsed < min || *parsed > max) {
    return Status::Error("--" + std::string(name) + ": expected an integer in [" +
                         std::to_string(min) + ", " + std::to_string(max) + "], got '" +
                         std::string(value) + "'");
  }
  *out = *parsed;
  return Status::Ok();
}

Status ParseSeconds(std::string_view name, std::string_view value, double* out) {
  // std::from_chars for double is available in libstdc++ 11+.
  double parsed = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
  if (ec != std::errc() || ptr != value.data() + value.size() || !std::isfinite(parsed) ||
      parsed < 0 || parsed > 86400) {
    return Status::Error("--" + std::string(name) + ": expected seconds in [0, 86400], got '" +
                         std::string(value) + "'");
  }
  *out = parsed;
  return Status::Ok();
}

template <typename E>
Status ParseChoice(std::string_view name, std::string_view value,
                   std::initializer_list<std::pair<std::string_view, E>> choices, E* out) {
  std::string names;
  for (const auto& [text, e] : choices) {
    if (value == text) {
      *out = e;
      return Status::Ok();
    }
    names += names.empty() ? "" : "|";
    names += text;
  }
  return Status::Error("--" + std::string(name) + ": expected " + names + ", got '" +
                       std::string(value) + "'");
}

std::map<std::string_view, Flag> MakeFlags(Options* o, bool* mode_given, bool* seconds_given,
                                           bool* workers_given, bool* clients_given) {
  std::map<std::string_view, Flag> f;
  f["help"] = {false, [o](std::string_view) {
                 o->show_help = true;
                 return Status::Ok();
               }};
  f["mode"] = {
      true, [o, mode_given](std::string_view v) {
        *mode_given = true;
        return ParseChoice<Mode>(
            "mode", v,
            {{"bg", Mode::kBackground}, {"fg", Mode::kForeground}, {"latency", Mode::kLatency}},
            &o->mode);
      }};
  f["submit-only"] = {false, [o](std::string_view) {
                        o->mode = Mode::kSubmitOnly;
                        return Status::Ok();
                      }};
  f["drain"] = {false, [o](std::string_view) {
                  o->mode = Mode::kDrain;
                  return Status::Ok();
                }};
  f["host"] = {true, [o](std::string_view v) {
                 if (v.empty()) return Status::Error("--host: empty");
                 o->host = std::string(v);
                 return Status::Ok();
               }};
  f["port"] = {true, [o](std::string_view v) {
                 return ParseInteger<uint16_t>("port", v, 1, 65535, &o->port);
               }};
  f["clients"] = {true, [o, clients_given](std::string_view v) {
                    *clients_given = true;
                    return ParseInteger("clients", v, 0, 100000, &o->clients);
                  }};
  f["workers"] = {true, [o, workers_given](std::string_view v) {
                    *workers_given = true;
                    return ParseInteger("workers", v, 0, 100000, &o->workers);
                  }};
  f["window"] = {
      true, [o](std::string_view v) { return ParseInteger("window", v, 1, 1000000, &o->window); }};
  f["threads"] = {
      true, [o](std::string_view v) { return ParseInteger("threads", v, 1, 64, &o->threads); }};
  f["idle-connections"] = {true, [o](std::string_view v) {
                             return ParseInteger("idle-connections", v, 0, 1000000,
                                                 &o->idle_connections);
                           }};
  f["idle-function"] = {true, [o](std::string_view v) {
                          o->idle_function = std::string(v);
                          return Status::Ok();
                        }};
  f["connect-concurrency"] = {true, [o](std::string_view v) {
                                return ParseInteger("connect-concurrency", v, 1, 100000,
                                                    &o->connect_concurrency);
                              }};
  f["tls"] = {false, [o](std::string_view) {
                o->tls = true;
                return Status::Ok();
              }};
  f["tls-ca"] = {true, [o](std::string_view v) {
                   if (v.empty()) return Status::Error("--tls-ca: empty file name");
                   o->tls = true;
                   o->tls_ca = std::string(v);
                   return Status::Ok();
                 }};
  f["jobs"] = {true, [o](std::string_view v) {
                 return ParseInteger<int64_t>("jobs", v, 1, int64_t{1} << 50, &o->jobs);
               }};
  f["seconds"] = {true, [o, seconds_given](std::string_view v) {
                    *seconds_given = true;
                    return ParseSeconds("seconds", v, &o->seconds);
                  }};
  f["warmup"] = {true, [o](std::string_view v) { return ParseSeconds("warmup", v, &o->warmup); }};
  f["timeout"] = {true,
                  [o](std::string_view v) { return ParseSeconds("timeout", v, &o->timeout); }};
  f["backlog"] = {true, [o](std::string_view v) {
                    return ParseInteger<int64_t>("backlog", v, 0, int64_t{1} << 50, &o->backlog);
                  }};
  f["payload"] = {true, [o](std::string_view v) {
                    return ParseInteger<size_t>("payload", v, 0, size_t{16} << 20, &o->payload);
                  }};
  f["functions"] = {true, [o](std::string_view v) {
                      return ParseInteger("functions", v, 1, 100000, &o->functions);
                    }};
  f["function-prefix"] = {true, [o](std::string_view v) {
                            o->function_prefix = std::string(v);
                            return Status::Ok();
                          }};
  f["unique"] = {
      true, [o](std::string_view v) {
        return ParseChoice<UniqueKind>(
            "unique", v,
            {{"none", UniqueKind::kNone}, {"uuid", UniqueKind::kUuid}, {"seq", UniqueKind::kSeq}},
            &o->unique);
      }};
  f["priority"] = {true, [o](std::string_view v) {
                     return ParseChoice<PriorityKind>("priority", v,
                                                      {{"normal", PriorityKind::kNormal},
                                                       {"high", PriorityKind::kHigh},
                                                       {"low", PriorityKind::kLow},
                                                       {"mixed", PriorityKind::kMixed}},
                                                      &o->priority);
                   }};
  f["result"] = {true, [o](std::string_view v) {
                   return ParseChoice<ResultKind>(
                       "result", v, {{"empty", ResultKind::kEmpty}, {"echo", ResultKind::kEcho}},
                       &o->result);
                 }};
  f["worker-mode"] = {true, [](std::string_view v) {
                        if (v != "grab") return Status::Error("--worker-mode: only 'grab' exists");
                        return Status::Ok();
                      }};
  f["record"] = {true, [o](std::string_view v) {
                   if (v.empty()) return Status::Error("--record: empty file name");
                   o->record_path = std::string(v);
                   return Status::Ok();
                 }};
  f["idle-exit-ms"] = {true, [o](std::string_view v) {
                         return ParseInteger("idle-exit-ms", v, 1, 3600000, &o->idle_exit_ms);
                       }};
  return f;
}

}  // namespace

std::string_view Usage() { return kUsage; }

Result<Options> ParseOptions(int argc, char** argv) {
  Options o;
  bool mode_given = false, seconds_given = false, workers_given = false, clients_given = false;
  const auto flags = MakeFlags(&o, &mode_given, &seconds_given, &workers_given, &clients_given);
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.substr(0, 2) != "--")
      return Status::Error("unexpected argument '" + std::string(arg) + "'");
    arg.remove_prefix(2);
    std::string_view name = arg, value;
    const size_t eq = arg.find('=');
    const bool inline_value = eq != std::string_view::npos;
    if (inline_value) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    const auto it = flags.find(name);
    if (it == flags.end()) return Status::Error("unknown option --" + std::string(name));
    if (it->second.takes_value && !inline_value) {
      if (i + 1 >= argc) return Status::Error("--" + std::string(name) + " needs a value");
      value = argv[++i];
    } else if (!it->second.takes_value && inline_value) {
      return Status::Error("--" + std::string(name) + " takes no value");
    }
    Status s = it->second.set(value);
    if (!s.ok()) return s;
  }
  if (o.show_help) return o;

  if (mode_given && (o.mode == Mode::kSubmitOnly || o.mode == Mode::kDrain)) {
    return Status::Error("--mode cannot be combined with --submit-only or --drain");
  }
  if (o.mode == Mode::kSubmitOnly) {
    if (workers_given && o.workers != 0) return Status::Error("--submit-only runs no workers");
    o.workers = 0;
  }
  if (o.mode == Mode::kDrain) {
    if (clients_given && o.clients != 0) return Status::Error("--drain runs no clients");
    o.clients = 0;
    if (o.workers < 1) return Status::Error("--drain needs at least one worker");
  } else if (o.clients < 1) {
    return Status::Error("--clients must be at least 1");
  }
  if (o.mode == Mode::kLatency) o.window = 1;
  if (o.jobs > 0 && seconds_given) return Status::Error("give --jobs or --seconds, not both");
  if (o.jobs > 0 && o.warmup > 0) return Status::Error("--warmup only applies to --seconds");
  if (o.jobs == 0 && o.seconds <= 0 && o.mode != Mode::kDrain) {
    return Status::Error("--seconds must be positive");
  }
  if (!o.record_path.empty() && o.mode != Mode::kSubmitOnly && o.mode != Mode::kDrain) {
    return Status::Error("--record needs --submit-only or --drain");
  }
  if (o.timeout == 0) {
    o.timeout = o.jobs > 0 || o.mode == Mode::kDrain ? 300 : o.seconds + o.warmup + 30;
    // Opening connections is paced by the server's accept rate; allow 10 ms per connection.
    o.timeout += 0.01 * (o.clients + o.workers + o.idle_connections);
  }
  return o;
}

std::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kBackground:
      return "bg";
    case Mode::kForeground:
      return "fg";
    case Mode::kLatency:
      return "latency";
    case Mode::kSubmitOnly:
      return "submit-only";
    case Mode::kDrain:
      return "drain";
  }
  return "?";
}

std::string_view UniqueName(UniqueKind kind) {
  switch (kind) {
    case UniqueKind::kNone:
      return "none";
    case UniqueKind::kUuid:
      return "uuid";
    case UniqueKind::kSeq:
      return "seq";
  }
  return "?";
}

std::string_view PriorityName(PriorityKind kind) {
  switch (kind) {
    case PriorityKind::kNormal:
      return "normal";
    case PriorityKind::kHigh:
      return "high";
    case PriorityKind::kLow:
      return "low";
    case PriorityKind::kMixed:
      return "mixed";
  }
  return "?";
}

std::string_view ResultName(ResultKind kind) {
  switch (kind) {
    case ResultKind::kEmpty:
      return "empty";
    case ResultKind::kEcho:
      return "echo";
  }
  return "?";
}

}  // namespace roundhouse::loadgen
