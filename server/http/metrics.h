// GET /metrics: the Prometheus text exposition format (version 0.0.4) of the status snapshot.
// Pure. Metric names (all prefixed roundhouse_):
//   info{version} 1, uptime_seconds, connections, workers, functions
//   jobs_submitted_total / jobs_completed_total / jobs_failed_total {function}   counters
//   jobs_queued{function,priority}, jobs_running{function}, function_workers{function}  gauges
//   Cardinality: the caller passes at most --metrics-max-functions functions (CollectTop-
//   Functions); everything else is one more series per metric labelled other="true" instead of
//   function (for counters: the other functions' and the freed functions' counts).
//   store_commits_total, store_commit_failures_total, store_pending_adds,
//   store_commit_seconds (histogram: _bucket{le}, _sum, _count)
//   acl_denials_total{permission} (only with access control on; five series: submit, register,
//   admin_read, admin_control, admin_operator)
//   jenkins_master_up{master} (1 HEALTHY, 0 otherwise), jenkins_master_health{master,state},
//   jenkins_requests_total{master}, jenkins_request_errors_total{master},
//   jenkins_dispatches_total{master}, jenkins_requeues_total{master},
//   jenkins_executors{master,state="busy"|"idle"}, jenkins_builds_in_flight{master},
//   jenkins_last_poll_age_seconds{master} (-1 never)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "jenkins/summary.h"
#include "server/http/status_data.h"
#include "server/reply_producer.h"

namespace roundhouse::server::http {

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// `other`: the aggregate of the functions not in `functions` (null: no such series);
// `function_count`: the `functions` gauge (SIZE_MAX: functions.size()).
std::string FormatMetrics(const ServerInfo& server, const std::vector<FunctionInfo>& functions,
                          size_t worker_count,
                          const std::vector<jenkins::MasterSummary>& masters,
                          const FunctionInfo* other = nullptr, size_t function_count = SIZE_MAX);

// The same text from the broker without stalling the loop (server/reply_producer.h): the
// functions are ranked kReplySliceEntries per loop turn (resumed by name, each counted once),
// then the text, bounded by `max_functions`, is written in one piece. The `functions` gauge is
// the number ranked; `other`'s counters add the freed functions' at the end.
std::unique_ptr<ReplyProducer> StreamMetrics(const broker::Broker& broker, size_t max_functions,
                                             ServerInfo server, size_t worker_count,
                                             std::vector<jenkins::MasterSummary> masters);

// A label value escaped for the text format: backslash, double quote and newline.
std::string EscapeLabelValue(std::string_view value);

}  // namespace roundhouse::server::http
