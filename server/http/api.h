// The JSON documents of the status API (GET /api/status, /api/workers, /api/jobs, /api/jenkins),
// written with RapidJSON's Writer from the plain snapshot values of status_data.h. Pure.
//
// Shapes (every key is always present; counts are integers, ages in milliseconds):
//   status:  {"server": {version, uptime_ms, started_unix, connections},
//             "store": {type, path, commits, failed_commits, pending_adds},
//             "functions": [{name, queued: {high, normal, low}, queued_total, running, workers,
//                            submitted, completed, failed}],
//             "totals": {functions, queued, running, workers}, "jenkins": {enabled, masters}}
//   workers: {"workers": [{fd, address, client_id, functions: [..], running: [handles], sleeping}]}
//   jobs:    {"function": f-or-null, "limit": n, "matched": n, "jobs": [{handle, function,
//             unique, priority, state, background, ignored, age_ms, when, retries, worker}]}
//   jenkins: {"enabled": bool, "masters": [{name, manager, base_url, health, enabled,
//             quieting_down, version, last_poll_age_ms, functions, requests, request_errors,
//             dispatches, requeues, dropped_parameters, executors: {total, busy, idle},
//             nodes: [{name, mode, offline, temporarily_offline, labels, free, reservations,
//                      executors: [{number, worker, idle, build_url}]}],
//             builds: [{handle, unique, function, job, state, queue_id, number, url, node,
//                       age_ms}]}]}
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "jenkins/summary.h"
#include "server/http/status_data.h"
#include "server/reply_producer.h"

namespace roundhouse::server::http {

std::string StatusJson(const ServerInfo& server, const std::vector<FunctionInfo>& functions,
                       size_t worker_count, bool jenkins_enabled, size_t masters);
std::string WorkersJson(const std::vector<WorkerInfo>& workers);
std::string JobsJson(const std::string& function, size_t limit, size_t matched,
                     const std::vector<JobInfo>& jobs);
std::string JenkinsJson(bool enabled, const std::vector<jenkins::MasterSummary>& masters);

// The same documents streamed a slice at a time (server/reply_producer.h, doc/protocol.md §4.5),
// straight from the broker: functions resumed by name, workers by (fd, serial), jobs through a
// Broker::JobCursor. /api/status's totals are those of the functions listed; /api/jobs puts
// "matched" after "jobs" (it is counted while listing). The broker must outlive the producer.
std::unique_ptr<ReplyProducer> StreamStatusJson(const broker::Broker& broker, ServerInfo server,
                                                bool jenkins_enabled, size_t masters);
std::unique_ptr<ReplyProducer> StreamWorkersJson(const broker::Broker& broker);
std::unique_ptr<ReplyProducer> StreamJobsJson(const broker::Broker& broker, std::string function,
                                              size_t limit, int64_t now_ms, int64_t now_unix);
// {"error": {"status": n, "message": "..."}}
std::string ErrorJson(int status, const std::string& message);

}  // namespace roundhouse::server::http
