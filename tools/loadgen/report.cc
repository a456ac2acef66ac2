#include "tools/loadgen/report.h"

#include <cstdio>
#include <string_view>

namespace roundhouse::loadgen {
namespace {

std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {  // keep the line ASCII whatever the server sent
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string Number(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

// What the latency percentiles measure in this mode, or empty when nothing is sampled.
std::string_view LatencyOf(Mode mode) {
  switch (mode) {
    case Mode::kBackground:
    case Mode::kSubmitOnly:
      return "submit_ack";
    case Mode::kForeground:
    case Mode::kLatency:
      return "round_trip";
    case Mode::kDrain:
      return "";
  }
  return "";
}

double Rate(const RunResult& r) {
  return r.seconds > 0 ? static_cast<double>(r.jobs) / r.seconds : 0;
}

std::string Micros(const Histogram& h, double q) {
  if (h.count() == 0) return "null";
  return Number(static_cast<double>(h.Quantile(q)) / 1000.0, 1);
}

}  // namespace

std::string FormatJson(const Options& o, const RunResult& r) {
  const Histogram& h = r.stats.latency;
  const std::string_view latency_of = LatencyOf(o.mode);
  std::string j = "{";
  j += "\"tool\":\"rh-loadgen\"";
  j += ",\"mode\":" + Quote(ModeName(o.mode));
  j += ",\"host\":" + Quote(o.host);
  j += ",\"port\":" + std::to_string(o.port);
  j += ",\"params\":{";
  j += "\"clients\":" + std::to_string(o.clients);
  j += ",\"workers\":" + std::to_string(o.workers);
  j += ",\"window\":" + std::to_string(o.window);
  j += ",\"threads\":" + std::to_string(o.threads);
  j += ",\"idle_connections\":" + std::to_string(o.idle_connections);
  j += ",\"functions\":" + std::to_string(o.functions);
  j += ",\"payload\":" + std::to_string(o.payload);
  j += ",\"unique\":" + Quote(UniqueName(o.unique));
  j += ",\"priority\":" + Quote(PriorityName(o.priority));
  j += ",\"result\":" + Quote(ResultName(o.result));
  j += ",\"jobs\":" + std::to_string(o.jobs);
  j += ",\"seconds\":" + (o.jobs > 0 ? std::string("null") : Number(o.seconds, 3));
  j += ",\"warmup\":" + Number(o.warmup, 3);
  j += ",\"backlog\":" + std::to_string(o.backlog);
  j += "}";
  j += ",\"jobs\":" + std::to_string(r.jobs);
  j += ",\"seconds\":" + Number(r.seconds, 6);
  j += ",\"jobs_per_s\":" + Number(Rate(r), 1);
  j += ",\"latency_of\":" + (latency_of.empty() ? std::string("null") : Quote(latency_of));
  j += ",\"samples\":" + std::to_string(h.count());
  j += ",\"p50_us\":" + Micros(h, 0.50);
  j += ",\"p99_us\":" + Micros(h, 0.99);
  j += ",\"p999_us\":" + Micros(h, 0.999);
  j += ",\"max_us\":" +
       (h.count() == 0 ? std::string("null") : Number(static_cast<double>(h.max()) / 1000.0, 1));
  j += ",\"submitted\":" + std::to_string(r.stats.submitted);
  j += ",\"created\":" + std::to_string(r.stats.created);
  j += ",\"completed_by_clients\":" + std::to_string(r.stats.client_done);
  j += ",\"completed_by_workers\":" + std::to_string(r.stats.worker_done);
  j += ",\"idle_noops\":" + std::to_string(r.stats.idle_noops);
  j += ",\"unfinished\":" + std::to_string(r.unfinished);
  j += ",\"left_queued\":" + std::to_string(r.left_queued);
  j += ",\"errors\":" + std::to_string(r.stats.errors);
  j += ",\"error_packets\":" + std::to_string(r.stats.error_packets);
  j += ",\"first_error\":" +
       (r.stats.first_error.empty() ? std::string("null") : Quote(r.stats.first_error));
  j += ",\"timed_out\":" + std::string(r.timed_out ? "true" : "false");
  j += ",\"failed\":" + std::string(r.failed ? "true" : "false");
  j += "}";
  return j;
}

std::string FormatHuman(const Options& o, const RunResult& r) {
  std::string s = "rh-loadgen " + std::string(ModeName(o.mode)) + " " + o.host + ":" +
                  std::to_string(o.port) + ": " + std::to_string(r.jobs) + " jobs in " +
                  Number(r.seconds, 2) + " s = " + Number(Rate(r), 0) + " jobs/s";
  const Histogram& h = r.stats.latency;
  if (h.count() > 0) {
    s += ", " + std::string(LatencyOf(o.mode)) + " p50 " + Micros(h, 0.5) + " us p99 " +
         Micros(h, 0.99) + " us p99.9 " + Micros(h, 0.999) + " us";
  }
  if (o.idle_connections > 0) s += ", " + std::to_string(o.idle_connections) + " idle connections";
  s += ", errors " + std::to_string(r.stats.errors);
  if (!r.stats.first_error.empty()) s += " (first: " + r.stats.first_error + ")";
  if (r.timed_out) s += ", TIMED OUT";
  if (r.unfinished > 0) s += ", " + std::to_string(r.unfinished) + " jobs unfinished";
  return s;
}

}  // namespace roundhouse::loadgen
