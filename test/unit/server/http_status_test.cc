// The status endpoint's pure parts: JSON documents (parsed back with RapidJSON), the Prometheus
// text, and the store's commit-latency histogram.
#include <rapidjson/document.h>

#include <catch2/catch.hpp>
#include <map>
#include <sstream>
#include <string>

#include "server/http/api.h"
#include "server/http/metrics.h"
#include "storage/job_store.h"

namespace roundhouse::server::http {
namespace {

// "name{labels}" -> value for every sample line; comment lines skipped.
std::map<std::string, std::string> Samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

rapidjson::Document Parse(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  REQUIRE_FALSE(doc.HasParseError());
  return doc;
}

FunctionInfo Fn(const std::string& name) {
  FunctionInfo f;
  f.name = name;
  f.queued = {1, 2, 3};
  f.running = 4;
  f.workers = 5;
  f.submitted = 10;
  f.completed = 6;
  f.failed = 1;
  return f;
}

jenkins::MasterSummary Master(const std::string& name, const std::string& health) {
  jenkins::MasterSummary m;
  m.name = name;
  m.health = health;
  m.requests = 42;
  m.request_errors = 3;
  jenkins::NodeSummary n;
  n.name = "u1";
  n.executors.push_back({0, "u1_exec-0", false, "http://j/job/a/1/"});
  n.executors.push_back({1, "u1_exec-1", true, ""});
  m.nodes.push_back(n);
  m.builds.push_back({"H:x:1", "u", "build:a", "a", "STARTED", 7, 1, "http://j/job/a/1/", "u1", 5});
  jenkins::CountExecutors(m);  // as the adapter does before any view formats the summary
  return m;
}

TEST_CASE("a commit at a bucket bound counts in that bucket, one microsecond more in the next",
          "[http][storage]") {
  storage::StoreStats s;
  s.RecordCommit(250, true);
  s.RecordCommit(251, true);
  s.RecordCommit(-5, true);
  s.RecordCommit(10'000'000, false);
  CHECK(s.latency_buckets[0] == 2);  // 250 and the clamped -5
  CHECK(s.latency_buckets[1] == 1);
  CHECK(s.latency_buckets.back() == 1);
  CHECK(s.commits == 4);
  CHECK(s.failed_commits == 1);
  CHECK(s.latency_sum_us == 250 + 251 + 10'000'000);
}

TEST_CASE("metrics histogram buckets are cumulative and end with +Inf equal to _count",
          "[http]") {
  ServerInfo info;
  info.version = "1.2.3";
  info.store_type = "sqlite";
  info.store.RecordCommit(100, true);
  info.store.RecordCommit(3000, true);
  info.store.RecordCommit(9'000'000, true);
  const auto samples = Samples(FormatMetrics(info, {}, 0, {}));
  CHECK(samples.at("roundhouse_store_commit_seconds_bucket{store=\"sqlite\",le=\"0.000250\"}") ==
        "1");
  CHECK(samples.at("roundhouse_store_commit_seconds_bucket{store=\"sqlite\",le=\"0.005000\"}") ==
        "2");
  CHECK(samples.at("roundhouse_store_commit_seconds_bucket{store=\"sqlite\",le=\"5.000000\"}") ==
        "2");
  CHECK(samples.at("roundhouse_store_commit_seconds_bucket{store=\"sqlite\",le=\"+Inf\"}") == "3");
  CHECK(samples.at("roundhouse_store_commit_seconds_count{store=\"sqlite\"}") == "3");
  CHECK(samples.at("roundhouse_store_commits_total{store=\"sqlite\"}") == "3");
  CHECK(samples.at("roundhouse_info{version=\"1.2.3\"}") == "1");
}

TEST_CASE("metrics per function carry the counters and the three priorities", "[http]") {
  const auto samples = Samples(FormatMetrics(ServerInfo{}, {Fn("f")}, 2, {}));
  CHECK(samples.at("roundhouse_jobs_submitted_total{function=\"f\"}") == "10");
  CHECK(samples.at("roundhouse_jobs_completed_total{function=\"f\"}") == "6");
  CHECK(samples.at("roundhouse_jobs_failed_total{function=\"f\"}") == "1");
  CHECK(samples.at("roundhouse_jobs_queued{function=\"f\",priority=\"high\"}") == "1");
  CHECK(samples.at("roundhouse_jobs_queued{function=\"f\",priority=\"low\"}") == "3");
  CHECK(samples.at("roundhouse_jobs_running{function=\"f\"}") == "4");
  CHECK(samples.at("roundhouse_workers") == "2");
}

TEST_CASE("acl denial counters: one series per permission kind, none with the ACL off", "[http]") {
  ServerInfo info;
  CHECK(FormatMetrics(info, {}, 0, {}).find("acl_denials_total") == std::string::npos);
  info.acl_denials = {{"submit", 3}, {"register", 0}, {"admin_operator", 7}};
  const std::string text = FormatMetrics(info, {}, 0, {});
  const auto samples = Samples(text);
  CHECK(samples.at("roundhouse_acl_denials_total{permission=\"submit\"}") == "3");
  CHECK(samples.at("roundhouse_acl_denials_total{permission=\"register\"}") == "0");
  CHECK(samples.at("roundhouse_acl_denials_total{permission=\"admin_operator\"}") == "7");
  CHECK(text.find("# TYPE roundhouse_acl_denials_total counter\n") != std::string::npos);
}

TEST_CASE("label values: escaped form, then backslash and quote escaped", "[http]") {
  // a\b"c<LF>d: the backslash is doubled by the escaped form and again by the text format;
  // the newline becomes \x0a (whose backslash the text format escapes).
  CHECK(EscapeLabelValue("a\\b\"c\nd") == "a\\\\\\\\b\\\"c\\\\x0ad");
  CHECK(EscapeLabelValue("f\xff") == "f\\\\xff");
  const auto samples = Samples(FormatMetrics(ServerInfo{}, {Fn("x\"y")}, 0, {}));
  CHECK(samples.count("roundhouse_jobs_running{function=\"x\\\"y\"}") == 1);
}

TEST_CASE("jenkins metrics per master: requests, errors, health, executors", "[http]") {
  const auto samples =
      Samples(FormatMetrics(ServerInfo{}, {}, 0, {Master("a", "HEALTHY"), Master("b", "DOWN")}));
  CHECK(samples.at("roundhouse_jenkins_requests_total{master=\"a\"}") == "42");
  CHECK(samples.at("roundhouse_jenkins_request_errors_total{master=\"b\"}") == "3");
  CHECK(samples.at("roundhouse_jenkins_master_up{master=\"a\"}") == "1");
  CHECK(samples.at("roundhouse_jenkins_master_up{master=\"b\"}") == "0");
  CHECK(samples.at("roundhouse_jenkins_master_health{master=\"b\",state=\"DOWN\"}") == "1");
  CHECK(samples.at("roundhouse_jenkins_executors{master=\"a\",state=\"busy\"}") == "1");
  CHECK(samples.at("roundhouse_jenkins_executors{master=\"a\",state=\"idle\"}") == "1");
  CHECK(samples.at("roundhouse_jenkins_builds_in_flight{master=\"a\"}") == "1");
  CHECK(samples.at("roundhouse_jenkins_last_poll_age_seconds{master=\"a\"}") == "-1.000000");
}

TEST_CASE("status JSON sums the functions into totals", "[http]") {
  ServerInfo info;
  info.version = "v";
  info.store_type = "none";
  const auto doc = Parse(StatusJson(info, {Fn("a"), Fn("b")}, 3, true, 2));
  CHECK(doc["functions"].Size() == 2);
  CHECK(doc["functions"][0]["queued"]["low"].GetUint64() == 3);
  CHECK(doc["functions"][0]["queued_total"].GetUint64() == 6);
  CHECK(doc["totals"]["queued"].GetUint64() == 12);
  CHECK(doc["totals"]["running"].GetUint64() == 8);
  CHECK(doc["totals"]["workers"].GetUint64() == 3);
  CHECK(doc["jenkins"]["enabled"].GetBool());
  CHECK(doc["jenkins"]["masters"].GetUint64() == 2);
  CHECK(std::string(doc["store"]["type"].GetString()) == "none");
}

TEST_CASE("jenkins JSON counts busy and idle executors and lists builds", "[http]") {
  const auto doc = Parse(JenkinsJson(true, {Master("a", "SUSPECT")}));
  const auto& m = doc["masters"][0];
  CHECK(std::string(m["health"].GetString()) == "SUSPECT");
  CHECK(m["executors"]["busy"].GetUint64() == 1);
  CHECK(m["executors"]["idle"].GetUint64() == 1);
  CHECK(std::string(m["nodes"][0]["executors"][0]["worker"].GetString()) == "u1_exec-0");
  CHECK(std::string(m["builds"][0]["url"].GetString()) == "http://j/job/a/1/");
}

TEST_CASE("jobs JSON: null function when unfiltered, strings escaped", "[http]") {
  JobInfo j;
  j.handle = "H:x:1";
  j.unique = "quote\"and\\slash";
  auto doc = Parse(JobsJson("", 100, 1, {j}));
  CHECK(doc["function"].IsNull());
  CHECK(std::string(doc["jobs"][0]["unique"].GetString()) == "quote\"and\\slash");
  doc = Parse(JobsJson("f", 5, 0, {}));
  CHECK(std::string(doc["function"].GetString()) == "f");
  CHECK(doc["jobs"].Size() == 0);
}

TEST_CASE("error JSON carries status and message", "[http]") {
  const auto doc = Parse(ErrorJson(404, "no such path: /x"));
  CHECK(doc["error"]["status"].GetInt() == 404);
  CHECK(std::string(doc["error"]["message"].GetString()) == "no such path: /x");
}

}  // namespace
}  // namespace roundhouse::server::http
