// Jenkins JSON models: tree strings (doc/jenkins.md §2.3), URL paths (§2.1), every read parser on
// realistic Jenkins answers and on hostile input, the §1.4 build arguments, §4.6 parameter
// filtering, the §1.5 start/final JSON byte for byte, and the §1.7/§1.8 arguments.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "jenkins/job_contract.h"
#include "jenkins/rest_model.h"

namespace roundhouse::jenkins {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;
using Strings = std::vector<std::string>;

constexpr char kR2Fields[] =
    "_class,name,fullName,url,buildable,disabled,concurrentBuild,labelExpression,inQueue,"
    "lastBuild[number,building],"
    "property[parameterDefinitions[_class,name,type,defaultParameterValue[value]]]";

TEST_CASE("tree strings are exactly those of doc/jenkins.md §2.3", "[jenkins][model]") {
  CHECK(std::string(kTreeController) == "mode,numExecutors,quietingDown,useCrumbs,useSecurity");
  CHECK(std::string(kTreeJob) == kR2Fields);
  CHECK(std::string(kTreeComputers) ==
        "busyExecutors,totalExecutors,computer[_class,displayName,offline,temporarilyOffline,"
        "offlineCauseReason,numExecutors,idle,assignedLabels[name],executors[number,idle,"
        "currentExecutable[number,url]],oneOffExecutors[currentExecutable[number,url]]]");
  CHECK(std::string(kTreeLabelNodes) == "nodes[nodeName,mode]");
  CHECK(std::string(kTreeQueueItem) ==
        "_class,id,why,blocked,buildable,stuck,cancelled,inQueueSince,executable[number,url]");
  CHECK(std::string(kTreeQueue) ==
        "items[_class,id,why,blocked,buildable,inQueueSince,task[name,url],"
        "actions[parameters[name,value]]]");
  CHECK(std::string(kTreeBuild) ==
        "_class,number,url,building,result,timestamp,duration,estimatedDuration,queueId,"
        "builtOn,description");
  CHECK(std::string(kTreeBuilds) ==
        "builds[number,queueId,building,result,url,actions[parameters[name,value]]]{0,50}");
  CHECK(std::string(kTreeComputer) ==
        "executors[number,currentExecutable[url]],oneOffExecutors[currentExecutable[url]]");
}

TEST_CASE("R2 tree nests jobs[...] once per folder level", "[jenkins][model]") {
  const std::string f = kR2Fields;
  CHECK(JobsTree(0) == "jobs[" + f + "]");
  CHECK(JobsTree(1) == "jobs[" + f + ",jobs[" + f + "]]");
  CHECK(JobsTree(3) == "jobs[" + f + ",jobs[" + f + ",jobs[" + f + ",jobs[" + f + "]]]]");
  CHECK(JobsTree(-4) == JobsTree(0));
}

TEST_CASE("job paths map folders and percent-encode each segment", "[jenkins][model]") {
  CHECK(JobPath("gate-foo-pep8") == "job/gate-foo-pep8/");
  CHECK(JobPath("a/b/c") == "job/a/job/b/job/c/");
  CHECK(JobPath("team x/build #1") == "job/team%20x/job/build%20%231/");
  CHECK(JobPath("caf\xC3\xA9") == "job/caf%C3%A9/");
  CHECK(JobPath("a?b%c") == "job/a%3Fb%25c/");
  CHECK(JobPath("x_y.z~w-v") == "job/x_y.z~w-v/");
  CHECK(JobPath("") == "");
}

TEST_CASE("computer paths special-case the built-in node", "[jenkins][model]") {
  CHECK(ComputerPath("bare-trusty-123") == "computer/bare-trusty-123/");
  CHECK(ComputerPath("built-in") == "computer/(built-in)/");
  CHECK(ComputerPath("master") == "computer/(master)/");
  CHECK(ComputerPath("my node") == "computer/my%20node/");
}

TEST_CASE("label paths and api/json encode the whole text", "[jenkins][model]") {
  CHECK(LabelPath("linux && !arm") == "label/linux%20%26%26%20%21arm/");
  CHECK(LabelPath("a/b") == "label/a%2Fb/");
  CHECK(ApiJson("nodes[nodeName,mode]") == "api/json?tree=nodes%5BnodeName%2Cmode%5D");
  CHECK(ApiJson("builds[number]{0,50}") == "api/json?tree=builds%5Bnumber%5D%7B0%2C50%7D");
}

TEST_CASE("queue ids come from Location headers", "[jenkins][model]") {
  CHECK(QueueIdFromLocation("https://jenkins01.example.org/queue/item/4711/") == 4711);
  CHECK(QueueIdFromLocation("http://h/jenkins/queue/item/12") == 12);
  CHECK(QueueIdFromLocation("/queue/item/5/") == 5);
  CHECK(QueueIdFromLocation("queue/item/5/") == 5);
  CHECK(QueueIdFromLocation("http://h/queue/item/9/\r\n") == 9);
  CHECK_FALSE(QueueIdFromLocation("http://h/job/x/"));
  CHECK_FALSE(QueueIdFromLocation("http://h/queue/item/"));
  CHECK_FALSE(QueueIdFromLocation("http://h/queue/item/-3/"));
  CHECK_FALSE(QueueIdFromLocation("http://h/queue/item/12x/"));
  CHECK_FALSE(QueueIdFromLocation("http://h/myqueue/item/12/"));
  CHECK_FALSE(QueueIdFromLocation("http://h/queue/item/99999999999999999999999/"));
  CHECK_FALSE(QueueIdFromLocation(""));
}

TEST_CASE("R1 controller flags", "[jenkins][model]") {
  auto r = ParseController(R"({"_class":"hudson.model.Hudson","mode":"NORMAL","numExecutors":2,)"
                           R"("quietingDown":true,"useCrumbs":true,"useSecurity":true})");
  REQUIRE(r.ok());
  CHECK(r.value().quieting_down);
  CHECK(r.value().use_crumbs);
  CHECK(r.value().use_security);
  CHECK(r.value().num_executors == 2);

  auto empty = ParseController("{}");
  REQUIRE(empty.ok());
  CHECK_FALSE(empty.value().quieting_down);
  CHECK_FALSE(ParseController("[]").ok());
  CHECK_FALSE(ParseController("").ok());
  CHECK_FALSE(ParseController(R"({"quietingDown":tru)").ok());
}

constexpr char kJobsSample[] = R"({
  "_class": "hudson.model.Hudson",
  "jobs": [
    {"_class": "hudson.model.FreeStyleProject", "name": "gate-foo-pep8",
     "fullName": "gate-foo-pep8", "url": "https://jenkins01.example.org/job/gate-foo-pep8/",
     "buildable": true, "disabled": false, "concurrentBuild": true,
     "labelExpression": "bare-trusty", "inQueue": false,
     "lastBuild": {"_class": "hudson.model.FreeStyleBuild", "number": 1233, "building": true},
     "property": [
       {"_class": "jenkins.model.BuildDiscarderProperty"},
       {"_class": "hudson.model.ParametersDefinitionProperty", "parameterDefinitions": [
         {"_class": "hudson.model.StringParameterDefinition", "name": "ZUUL_UUID",
          "type": "StringParameterDefinition",
          "defaultParameterValue": {"_class": "hudson.model.StringParameterValue", "value": ""}},
         {"_class": "org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition",
          "name": "GEARMAN_NODE", "type": "NodeParameterDefinition",
          "defaultParameterValue": {"_class": "org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterValue"}},
         {"_class": "hudson.model.BooleanParameterDefinition", "name": "DEBUG",
          "type": "BooleanParameterDefinition",
          "defaultParameterValue": {"_class": "hudson.model.BooleanParameterValue", "value": false}}
       ]}
     ]},
    {"_class": "hudson.model.FreeStyleProject", "name": "unrestricted", "fullName": "unrestricted",
     "url": "https://jenkins01.example.org/job/unrestricted/", "buildable": false,
     "disabled": true, "concurrentBuild": false, "labelExpression": null, "inQueue": true,
     "lastBuild": null, "property": []},
    {"_class": "com.cloudbees.hudson.plugins.folder.Folder", "name": "team",
     "fullName": "team", "url": "https://jenkins01.example.org/job/team/",
     "jobs": [
       {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob", "name": "deploy",
        "fullName": "team/deploy", "url": "https://jenkins01.example.org/job/team/job/deploy/",
        "buildable": true, "disabled": false, "concurrentBuild": false, "inQueue": false,
        "lastBuild": null, "property": []},
       {"_class": "com.cloudbees.hudson.plugins.folder.Folder", "name": "inner",
        "jobs": [
          {"_class": "hudson.matrix.MatrixProject", "name": "matrix",
           "buildable": true, "labelExpression": "linux && x86"}
        ]},
       {"_class": "com.cloudbees.hudson.plugins.folder.Folder", "name": "too-deep",
        "fullName": "team/too-deep"}
     ]}
  ]
})";

TEST_CASE("R2 job table with parameters, Pipeline and nested folders", "[jenkins][model]") {
  auto r = ParseJobs(kJobsSample);
  REQUIRE(r.ok());
  const auto& jobs = r.value();
  REQUIRE(jobs.size() == 4);

  const JobInfo& gate = jobs[0];
  CHECK(gate.name == "gate-foo-pep8");
  CHECK(gate.full_name == "gate-foo-pep8");
  CHECK(gate.cls == "hudson.model.FreeStyleProject");
  CHECK(gate.url == "https://jenkins01.example.org/job/gate-foo-pep8/");
  CHECK(gate.enabled());
  CHECK(gate.concurrent_build);
  CHECK(gate.label_expression == "bare-trusty");
  CHECK(gate.last_build_number == 1233);
  CHECK(gate.last_build_building);
  CHECK_FALSE(gate.flyweight());
  REQUIRE(gate.parameters.size() == 3);
  CHECK(gate.parameters[0].name == "ZUUL_UUID");
  CHECK(gate.parameters[0].default_value == "");
  CHECK(gate.parameters[1].type == "NodeParameterDefinition");
  CHECK_FALSE(gate.parameters[1].default_value.has_value());
  CHECK(gate.parameters[2].default_value == "false");
  REQUIRE(gate.FindParameter("GEARMAN_NODE") != nullptr);
  CHECK(gate.FindParameter("GEARMAN_NODE")->cls ==
        "org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition");
  CHECK(gate.FindParameter("GEARMAN_UNIQUE") == nullptr);

  const JobInfo& plain = jobs[1];
  CHECK_FALSE(plain.enabled());
  CHECK_FALSE(plain.label_expression.has_value());
  CHECK(plain.in_queue);
  CHECK_FALSE(plain.concurrent_build);
  CHECK_FALSE(plain.last_build_number.has_value());
  CHECK(plain.parameters.empty());

  const JobInfo& pipeline = jobs[2];
  CHECK(pipeline.name == "deploy");
  CHECK(pipeline.full_name == "team/deploy");
  CHECK(pipeline.flyweight());
  CHECK_FALSE(pipeline.label_expression.has_value());

  const JobInfo& matrix = jobs[3];
  CHECK(matrix.name == "matrix");
  CHECK(matrix.full_name == "team/inner/matrix");  // built from the path: no fullName
  CHECK(matrix.flyweight());
  CHECK(matrix.label_expression == "linux && x86");
}

TEST_CASE("R2 rejects malformed answers", "[jenkins][model]") {
  CHECK_FALSE(ParseJobs("{}").ok());
  CHECK_FALSE(ParseJobs(R"({"jobs":{}})").ok());
  CHECK_FALSE(ParseJobs(R"({"jobs":[1]})").ok());
  CHECK_FALSE(ParseJobs(R"({"jobs":[{"buildable":true}]})").ok());
  CHECK_FALSE(ParseJobs(R"({"jobs":[{"name":7,"buildable":true}]})").ok());
  CHECK_FALSE(ParseJobs(std::string(kJobsSample).substr(0, 500)).ok());
  auto bad = ParseJobs(R"({"jobs":[)");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().rfind("jobs: invalid JSON at offset", 0) == 0);
  // Wrong types on optional fields fall back to the defaults.
  auto lax =
      ParseJobs(R"({"jobs":[{"name":"x","buildable":"yes","labelExpression":5,"lastBuild":[],)"
                R"("property":{"parameterDefinitions":[]}}]})");
  REQUIRE(lax.ok());
  REQUIRE(lax.value().size() == 1);
  CHECK(lax.value()[0].buildable);
  CHECK_FALSE(lax.value()[0].label_expression.has_value());
}

TEST_CASE("R2 bounds folder nesting and survives deep JSON", "[jenkins][model]") {
  std::string deep_folders;
  for (int i = 0; i < 100; ++i) deep_folders += R"({"jobs":[{"name":"f","jobs":[)";
  deep_folders += R"({"name":"j","buildable":true})";
  for (int i = 0; i < 100; ++i) deep_folders += "]}]}";
  CHECK_FALSE(ParseJobs(deep_folders).ok());

  std::string deep(200000, '[');
  CHECK_FALSE(ParseJobs(deep).ok());
  std::string nested = R"({"jobs":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  CHECK_FALSE(ParseJobs(nested).ok());
}

TEST_CASE("every truncation of realistic answers is an error, never a crash", "[jenkins][model]") {
  const std::string jobs = kJobsSample;
  for (size_t n = 0; n < jobs.size() - 1; ++n) {
    INFO("prefix length " << n);
    REQUIRE_FALSE(ParseJobs(jobs.substr(0, n)).ok());
  }
}

TEST_CASE("R3 single job", "[jenkins][model]") {
  auto r = ParseJob(
      R"({"_class":"hudson.model.FreeStyleProject","name":"deploy","fullName":"ops/deploy",)"
      R"("buildable":true,"disabled":false,"labelExpression":"  ","inQueue":false,)"
      R"("property":[{"parameterDefinitions":[{"name":"GEARMAN_UNIQUE","type":"StringParameterDefinition"}]}]})");
  REQUIRE(r.ok());
  CHECK(r.value().full_name == "ops/deploy");
  CHECK(r.value().label_expression == "  ");
  CHECK(r.value().FindParameter("GEARMAN_UNIQUE") != nullptr);
  CHECK_FALSE(ParseJob(R"({"fullName":"x"})").ok());
  CHECK_FALSE(ParseJob("null").ok());
}

constexpr char kComputersSample[] = R"({
  "_class": "hudson.model.ComputerSet", "busyExecutors": 1, "totalExecutors": 4,
  "computer": [
    {"_class": "hudson.model.Hudson$MasterComputer", "displayName": "Built-In Node",
     "offline": false, "temporarilyOffline": false, "offlineCauseReason": "", "numExecutors": 2,
     "idle": true, "assignedLabels": [{"name": "built-in"}],
     "executors": [{"number": 0, "idle": true, "currentExecutable": null},
                   {"number": 1, "idle": true, "currentExecutable": null}],
     "oneOffExecutors": [
       {"currentExecutable": {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
        "number": 7, "url": "https://jenkins01.example.org/job/team/job/deploy/7/"}}]},
    {"_class": "hudson.slaves.SlaveComputer", "displayName": "bare-trusty-123",
     "offline": false, "temporarilyOffline": false, "offlineCauseReason": "", "numExecutors": 2,
     "idle": false, "assignedLabels": [{"name": "bare-trusty-123"}, {"name": "bare-trusty"}],
     "executors": [
       {"number": 1, "idle": true, "currentExecutable": null},
       {"number": 0, "idle": false, "currentExecutable": {"_class": "hudson.model.FreeStyleBuild",
        "number": 1234, "url": "https://jenkins01.example.org/job/gate-foo-pep8/1234/"}}],
     "oneOffExecutors": []},
    {"_class": "hudson.slaves.SlaveComputer", "displayName": "gone",
     "offline": true, "temporarilyOffline": true, "offlineCauseReason": "Offline due to Gearman request",
     "numExecutors": 1, "assignedLabels": [{"name": "gone"}], "executors": [{}]}
  ]
})";

TEST_CASE("R4 node table with the built-in node under both names", "[jenkins][model]") {
  for (bool legacy : {false, true}) {
    auto r = ParseComputers(kComputersSample, legacy);
    REQUIRE(r.ok());
    const auto& nodes = r.value();
    REQUIRE(nodes.size() == 3);
    CHECK(nodes[0].builtin);
    CHECK(nodes[0].name == (legacy ? "master" : "built-in"));
    CHECK(nodes[0].num_executors == 2);
    REQUIRE(nodes[0].one_off_executors.size() == 1);
    CHECK_FALSE(nodes[0].one_off_executors[0].idle);
    CHECK(nodes[0].one_off_executors[0].build_number == 7);

    const ComputerInfo& agent = nodes[1];
    CHECK_FALSE(agent.builtin);
    CHECK(agent.name == "bare-trusty-123");
    CHECK(agent.labels == Strings{"bare-trusty-123", "bare-trusty"});
    REQUIRE(agent.executors.size() == 2);
    CHECK(agent.executors[0].number == 1);
    CHECK(agent.executors[0].idle);
    CHECK(agent.executors[0].build_url.empty());
    CHECK(agent.executors[1].number == 0);
    CHECK_FALSE(agent.executors[1].idle);
    CHECK(agent.executors[1].build_number == 1234);
    CHECK(agent.executors[1].build_url == "https://jenkins01.example.org/job/gate-foo-pep8/1234/");

    const ComputerInfo& gone = nodes[2];
    CHECK(gone.offline);
    CHECK(gone.temporarily_offline);
    CHECK(gone.offline_cause == "Offline due to Gearman request");
    REQUIRE(gone.executors.size() == 1);
    CHECK(gone.executors[0].number == 0);  // array index when Jenkins omits it
    CHECK(gone.executors[0].idle);
  }
}

TEST_CASE("every truncation of an R4 answer is an error", "[jenkins][model]") {
  const std::string computers = kComputersSample;
  for (size_t n = 0; n < computers.size() - 1; ++n) {
    INFO("prefix length " << n);
    REQUIRE_FALSE(ParseComputers(computers.substr(0, n), false).ok());
  }
}

TEST_CASE("R4 rejects malformed node tables", "[jenkins][model]") {
  CHECK_FALSE(ParseComputers("{}", false).ok());
  CHECK_FALSE(ParseComputers(R"({"computer":[null]})", false).ok());
  CHECK_FALSE(
      ParseComputers(R"({"computer":[{"_class":"hudson.slaves.SlaveComputer"}]})", false).ok());
  CHECK_FALSE(ParseComputers(R"({"computer":[{"displayName":"a","executors":7}]})", false).ok());
  CHECK_FALSE(ParseComputers(R"({"computer":[{"displayName":"a","executors":[3]}]})", false).ok());
  auto huge = ParseComputers(R"({"computer":[{"displayName":"a","numExecutors":1e999,)"
                             R"("executors":[{"number":99999999999999999999}]}]})",
                             false);
  // 1e999 is not valid for RapidJSON (overflow); either way nothing crashes.
  if (huge.ok()) CHECK(huge.value()[0].num_executors == 0);
}

TEST_CASE("built-in naming switches at Jenkins 2.307", "[jenkins][model]") {
  CHECK(UsesLegacyBuiltinName("2.306"));
  CHECK(UsesLegacyBuiltinName("1.651.2"));
  CHECK(UsesLegacyBuiltinName("2.289.3"));
  CHECK_FALSE(UsesLegacyBuiltinName("2.307"));
  CHECK_FALSE(UsesLegacyBuiltinName("2.440.3"));
  CHECK_FALSE(UsesLegacyBuiltinName("2.307-SNAPSHOT"));
  CHECK_FALSE(UsesLegacyBuiltinName("3.1"));
  CHECK_FALSE(UsesLegacyBuiltinName(""));
  CHECK_FALSE(UsesLegacyBuiltinName("jenkins"));
  CHECK_FALSE(UsesLegacyBuiltinName("2"));
  CHECK_FALSE(UsesLegacyBuiltinName("2."));
  CHECK_FALSE(UsesLegacyBuiltinName("99999999999999999999.1"));
}

TEST_CASE("R5 label nodes", "[jenkins][model]") {
  auto r = ParseLabelNodes(
      R"({"_class":"hudson.model.labels.LabelAtom","nodes":[)"
      R"({"_class":"hudson.model.Hudson","nodeName":"","mode":"NORMAL"},)"
      R"({"_class":"hudson.slaves.DumbSlave","nodeName":"y1","mode":"EXCLUSIVE"}]})");
  REQUIRE(r.ok());
  REQUIRE(r.value().size() == 2);
  CHECK(r.value()[0].node_name.empty());
  CHECK(r.value()[0].mode == "NORMAL");
  CHECK(r.value()[1].node_name == "y1");
  CHECK(r.value()[1].mode == "EXCLUSIVE");
  CHECK(ParseLabelNodes(R"({"nodes":[]})").ok());
  CHECK_FALSE(ParseLabelNodes(R"({"nodes":[{"mode":"NORMAL"}]})").ok());
  CHECK_FALSE(ParseLabelNodes(R"({"nodes":"y1"})").ok());
}

TEST_CASE("R11 executors of one computer", "[jenkins][model]") {
  auto r = ParseComputer(
      R"({"_class":"hudson.slaves.SlaveComputer","executors":[{"number":0,"currentExecutable":null},)"
      R"({"number":1,"currentExecutable":{"_class":"hudson.model.FreeStyleBuild",)"
      R"("url":"https://j/job/x/5/"}}],"oneOffExecutors":[]})");
  REQUIRE(r.ok());
  REQUIRE(r.value().executors.size() == 2);
  CHECK(r.value().executors[0].idle);
  CHECK_FALSE(r.value().executors[1].idle);
  CHECK(r.value().executors[1].build_url == "https://j/job/x/5/");
  CHECK_FALSE(r.value().executors[1].build_number.has_value());
  CHECK_FALSE(ParseComputer(R"({"executors":"none"})").ok());
}

TEST_CASE("R7 queue item kinds through the lifecycle", "[jenkins][model]") {
  auto waiting = ParseQueueItem(
      R"({"_class":"hudson.model.Queue$WaitingItem","id":42,"why":"In the quiet period.",)"
      R"("blocked":false,"buildable":false,"stuck":false,"inQueueSince":1700000000000})");
  REQUIRE(waiting.ok());
  CHECK(waiting.value().kind == QueueItemKind::kWaiting);
  CHECK(waiting.value().id == 42);
  CHECK(waiting.value().in_queue_since == 1700000000000);

  auto blocked = ParseQueueItem(
      R"({"_class":"hudson.model.Queue$BlockedItem","id":43,)"
      R"j("why":"Build #12 is already in progress (ETA: 1 min 2 sec)","blocked":true})j");
  REQUIRE(blocked.ok());
  CHECK(blocked.value().kind == QueueItemKind::kBlocked);
  CHECK(blocked.value().blocked);
  CHECK(blocked.value().why == "Build #12 is already in progress (ETA: 1 min 2 sec)");

  auto buildable = ParseQueueItem(
      R"({"_class":"hudson.model.Queue$BuildableItem","id":44,"buildable":true,"stuck":true,)"
      R"("why":"Waiting for next available executor on \u2018bare-trusty\u2019"})");
  REQUIRE(buildable.ok());
  CHECK(buildable.value().kind == QueueItemKind::kBuildable);
  CHECK(buildable.value().stuck);
  CHECK(buildable.value().why ==
        "Waiting for next available executor on \xE2\x80\x98"
        "bare-trusty\xE2\x80\x99");

  auto started =
      ParseQueueItem(R"({"_class":"hudson.model.Queue$LeftItem","id":45,"cancelled":false,)"
                     R"("executable":{"_class":"hudson.model.FreeStyleBuild","number":1234,)"
                     R"("url":"https://jenkins01.example.org/job/gate-foo-pep8/1234/"}})");
  REQUIRE(started.ok());
  CHECK(started.value().kind == QueueItemKind::kLeft);
  CHECK_FALSE(started.value().cancelled);
  CHECK(started.value().build_number == 1234);
  CHECK(started.value().build_url == "https://jenkins01.example.org/job/gate-foo-pep8/1234/");

  auto cancelled = ParseQueueItem(
      R"({"_class":"hudson.model.Queue$LeftItem","id":46,"cancelled":true,"executable":null})");
  REQUIRE(cancelled.ok());
  CHECK(cancelled.value().cancelled);
  CHECK_FALSE(cancelled.value().build_number.has_value());

  auto odd = ParseQueueItem(R"({"_class":"hudson.model.Queue$Item","id":1})");
  REQUIRE(odd.ok());
  CHECK(odd.value().kind == QueueItemKind::kUnknown);

  CHECK_FALSE(ParseQueueItem(R"({"_class":"hudson.model.Queue$LeftItem"})").ok());
  CHECK_FALSE(ParseQueueItem(R"({"id":"45"})").ok());
  CHECK_FALSE(ParseQueueItem(R"({"id":4.5})").ok());
  CHECK_FALSE(ParseQueueItem(R"({"id":99999999999999999999999})").ok());
}

TEST_CASE("R8 queue with parameters", "[jenkins][model]") {
  auto r = ParseQueue(R"({"_class":"hudson.model.Queue","items":[
    {"_class":"hudson.model.Queue$BuildableItem","id":101,"why":"Waiting",
     "task":{"_class":"hudson.model.FreeStyleProject","name":"gate-foo-pep8",
             "url":"https://jenkins01.example.org/job/gate-foo-pep8/"},
     "actions":[{"_class":"hudson.model.ParametersAction","parameters":[
        {"_class":"hudson.model.StringParameterValue","name":"GEARMAN_UNIQUE","value":"0123abcd"},
        {"_class":"hudson.model.BooleanParameterValue","name":"DEBUG","value":true},
        {"_class":"hudson.model.PasswordParameterValue","name":"SECRET"},
        {"_class":"hudson.model.StringParameterValue","name":"N","value":3}]},
       {"_class":"hudson.model.CauseAction"}, {}]},
    {"_class":"hudson.model.Queue$WaitingItem","id":102,"task":{"name":"other"}}]})");
  REQUIRE(r.ok());
  REQUIRE(r.value().size() == 2);
  const QueueEntry& e = r.value()[0];
  CHECK(e.id == 101);
  CHECK(e.task_name == "gate-foo-pep8");
  CHECK(e.task_url == "https://jenkins01.example.org/job/gate-foo-pep8/");
  CHECK(e.parameters == std::map<std::string, std::string>{
                            {"GEARMAN_UNIQUE", "0123abcd"}, {"DEBUG", "true"}, {"N", "3"}});
  CHECK(r.value()[1].parameters.empty());
  CHECK(ParseQueue(R"({"items":[]})").ok());
  CHECK_FALSE(ParseQueue(R"({"items":[{"task":{}}]})").ok());
  CHECK_FALSE(ParseQueue(R"({"items":[[]]})").ok());
  CHECK_FALSE(ParseQueue(R"({})").ok());
}

TEST_CASE("R9 build state", "[jenkins][model]") {
  auto running =
      ParseBuild(R"({"_class":"hudson.model.FreeStyleBuild","number":1234,)"
                 R"("url":"https://jenkins01.example.org/job/gate-foo-pep8/1234/","building":true,)"
                 R"("result":null,"timestamp":1700000000123,"duration":0,"estimatedDuration":-1,)"
                 R"("queueId":45,"builtOn":"bare-trusty-123","description":null})");
  REQUIRE(running.ok());
  const BuildInfo& b = running.value();
  CHECK(b.number == 1234);
  CHECK(b.building);
  CHECK_FALSE(b.result.has_value());
  CHECK(b.timestamp == 1700000000123);
  CHECK(b.estimated_duration == -1);
  CHECK(b.queue_id == 45);
  CHECK(b.built_on == "bare-trusty-123");

  auto done = ParseBuild(
      R"({"_class":"org.jenkinsci.plugins.workflow.job.WorkflowRun","number":7,"building":false,)"
      R"("result":"ABORTED","duration":5000,"estimatedDuration":61000,"queueId":46})");
  REQUIRE(done.ok());
  CHECK(done.value().result == "ABORTED");
  CHECK(done.value().estimated_duration == 61000);
  CHECK_FALSE(done.value().built_on.has_value());

  auto builtin = ParseBuild(R"({"number":1,"builtOn":""})");
  REQUIRE(builtin.ok());
  CHECK(builtin.value().built_on == "");

  CHECK_FALSE(ParseBuild(R"({"url":"x"})").ok());
  CHECK_FALSE(ParseBuild(R"({"number":"1234"})").ok());
  CHECK_FALSE(ParseBuild(R"({"number":1234)").ok());
}

TEST_CASE("R10 builds and allBuilds map queue ids and unique values", "[jenkins][model]") {
  constexpr char kBuilds[] = R"({"_class":"hudson.model.FreeStyleProject","%s":[
    {"_class":"hudson.model.FreeStyleBuild","number":12,"queueId":301,"building":false,
     "result":"SUCCESS","url":"https://j/job/x/12/",
     "actions":[{"_class":"hudson.model.ParametersAction","parameters":[
       {"name":"GEARMAN_UNIQUE","value":"u-12"}]},{"_class":"hudson.model.CauseAction"}]},
    {"_class":"hudson.model.FreeStyleBuild","number":11,"queueId":300,"building":true,
     "result":null,"url":"https://j/job/x/11/","actions":[]}]})";
  for (const char* field : {"builds", "allBuilds"}) {
    std::string json = kBuilds;
    json.replace(json.find("%s"), 2, field);
    auto r = ParseBuilds(json);
    REQUIRE(r.ok());
    REQUIRE(r.value().size() == 2);
    CHECK(r.value()[0].number == 12);
    CHECK(r.value()[0].queue_id == 301);
    CHECK(r.value()[0].result == "SUCCESS");
    CHECK(r.value()[0].parameters.at("GEARMAN_UNIQUE") == "u-12");
    CHECK(r.value()[1].building);
    CHECK(r.value()[1].parameters.empty());
  }
  CHECK_FALSE(ParseBuilds(R"({"lastBuild":{}})").ok());
  CHECK_FALSE(ParseBuilds(R"({"builds":[{"queueId":1}]})").ok());
  CHECK_FALSE(ParseBuilds(R"({"builds":[null]})").ok());
}

TEST_CASE("W0 crumb", "[jenkins][model]") {
  auto r = ParseCrumb(
      R"({"_class":"hudson.security.csrf.DefaultCrumbIssuer","crumb":"0f3c9a","crumbRequestField":"Jenkins-Crumb"})");
  REQUIRE(r.ok());
  CHECK(r.value().field == "Jenkins-Crumb");
  CHECK(r.value().value == "0f3c9a");
  CHECK_FALSE(ParseCrumb(R"({"crumb":"x"})").ok());
  CHECK_FALSE(ParseCrumb(R"({"crumb":1,"crumbRequestField":"Jenkins-Crumb"})").ok());
}

TEST_CASE("every parser rejects hostile bytes without crashing", "[jenkins][model]") {
  const std::vector<std::string> inputs = {
      "",
      " ",
      "null",
      "\"str\"",
      "{",
      "{\"a\":",
      "{\"jobs\":[{\"name\":\"\xC3\x28\",\"buildable\":true}]}",  // invalid UTF-8
      "{\"id\":1,\"why\":\"\xED\xA0\x80\"}",                      // encoded surrogate
      "{\"id\":1,\"why\":\"\\uD800\"}",                           // lone surrogate escape
      std::string("{\"id\":1}\0trailing", 17),
      "{\"id\":1} {\"id\":2}",
      std::string(100000, '{'),
      std::string(100000, '['),
      "{\"computer\":" + std::string(50000, '[') + "}",
      "{\"id\":1e400}",
      "{\"id\":-}",
  };
  for (const std::string& in : inputs) {
    INFO("input prefix: " << in.substr(0, 40));
    CHECK_FALSE(ParseJobs(in).ok());
    CHECK_FALSE(ParseComputers(in, false).ok());
    CHECK_FALSE(ParseLabelNodes(in).ok());
    CHECK_FALSE(ParseQueueItem(in).ok());
    CHECK_FALSE(ParseQueue(in).ok());
    CHECK_FALSE(ParseBuild(in).ok());
    CHECK_FALSE(ParseBuilds(in).ok());
    CHECK_FALSE(ParseCrumb(in).ok());
    CHECK_FALSE(ParseStopArguments(in).ok());
    CHECK_FALSE(ParseDescriptionArguments(in).ok());
    (void)ParseController(in);
    (void)ParseJob(in);
    (void)ParseComputer(in);
    if (!in.empty()) CHECK_FALSE(ParseBuildArguments(in).ok());
  }
}

Pairs Params(const BuildArguments& a) { return a.parameters; }

TEST_CASE("build arguments follow the rules of doc/jenkins.md §1.4", "[jenkins][model]") {
  auto empty = ParseBuildArguments("");
  REQUIRE(empty.ok());
  CHECK(empty.value().parameters.empty());
  CHECK_FALSE(empty.value().offline_node_when_complete);

  auto zuul = ParseBuildArguments(
      R"({"ZUUL_UUID":"2d4a7b0e9c3f4e1a8b6d5c4e3f2a1b0c","ZUUL_PROJECT":"openstack/foo",)"
      R"("ZUUL_CHANGE":12345,"ZUUL_PATCHSET":"3","BIG":123456789012345678901234567890,)"
      R"("RATIO":1.50,"EXP":1E+3,"NEG":-0,"DEBUG":false,"VERBOSE":true,"DROP":null,)"
      R"("UNICODE":"caf\u00e9 \u2603","RAW":"na\u00efve \ud83d\ude00"})");
  REQUIRE(zuul.ok());
  CHECK(Params(zuul.value()) == Pairs{{"ZUUL_UUID", "2d4a7b0e9c3f4e1a8b6d5c4e3f2a1b0c"},
                                      {"ZUUL_PROJECT", "openstack/foo"},
                                      {"ZUUL_CHANGE", "12345"},
                                      {"ZUUL_PATCHSET", "3"},
                                      {"BIG", "123456789012345678901234567890"},
                                      {"RATIO", "1.50"},
                                      {"EXP", "1E+3"},
                                      {"NEG", "-0"},
                                      {"DEBUG", "false"},
                                      {"VERBOSE", "true"},
                                      {"UNICODE", "caf\xC3\xA9 \xE2\x98\x83"},
                                      {"RAW", "na\xC3\xAFve \xF0\x9F\x98\x80"}});
  REQUIRE(zuul.value().Find("ZUUL_CHANGE") != nullptr);
  CHECK(*zuul.value().Find("ZUUL_CHANGE") == "12345");
  CHECK(zuul.value().Find("DROP") == nullptr);

  auto dup = ParseBuildArguments(R"({"A":"1","B":"2","A":"3","C":"x","C":null,"D":null,"D":4})");
  REQUIRE(dup.ok());
  CHECK(Params(dup.value()) == Pairs{{"A", "3"}, {"B", "2"}, {"D", "4"}});

  auto nul = ParseBuildArguments(R"({"K":"a\u0000b"})");
  REQUIRE(nul.ok());
  CHECK(Params(nul.value()) == Pairs{{"K", std::string("a\0b", 3)}});

  CHECK(ParseBuildArguments("{}").ok());
  CHECK(ParseBuildArguments("\xEF\xBB\xBF{}").ok());  // a UTF-8 BOM is ignored
  CHECK(ParseBuildArguments(" {\"A\":\"b\"} \n").ok());
}

TEST_CASE("invalid build arguments are errors", "[jenkins][model]") {
  struct Case {
    std::string data;
    std::string error_part;
  };
  const std::vector<Case> cases = {
      {"\xFF{}", "UTF-8"},
      {"{\"A\":\"\xC0\xAF\"}", "UTF-8"},          // overlong '/'
      {"{\"A\":\"\xF4\x90\x80\x80\"}", "UTF-8"},  // above U+10FFFF
      {"{\"A\":\"\xE2\x82\"}", "UTF-8"},          // truncated sequence
      {"not json", "invalid JSON"},
      {"{\"A\":\"b\"", "invalid JSON"},
      {"{\"A\":\"b\"}x", "invalid JSON"},
      {" ", "invalid JSON"},
      {"[\"A\"]", "not a JSON object"},
      {"\"A\"", "not a JSON object"},
      {"42", "not a JSON object"},
      {"null", "not a JSON object"},
      {R"({"A":{"b":1}})", "'A' is an object"},
      {R"({"A":["b"]})", "'A' is an array"},
      {R"({"A":1,"B":[]})", "'B' is an array"},
      {"{\"A\":" + std::string(100000, '[') + "}", "nested more than 200"},
      {std::string("{\"A\":\"b\"}\0{\"C\":[]}", 17), "NUL byte"},
  };
  for (const Case& c : cases) {
    INFO("data: " << c.data.substr(0, 40));
    auto r = ParseBuildArguments(c.data);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains(c.error_part));
  }
}

TEST_CASE("OFFLINE_NODE_WHEN_COMPLETE is enabled only by 1, true, True, TRUE", "[jenkins][model]") {
  for (const char* on : {R"("1")", "1", R"("true")", "true", R"("True")", R"("TRUE")"}) {
    auto r = ParseBuildArguments(std::string(R"({"OFFLINE_NODE_WHEN_COMPLETE":)") + on + "}");
    REQUIRE(r.ok());
    CHECK(r.value().offline_node_when_complete);
    CHECK(r.value().Find("OFFLINE_NODE_WHEN_COMPLETE") != nullptr);
  }
  for (const char* off :
       {R"("0")", "0", "false", R"("yes")", R"("tRUE")", "1.0", R"(" 1")", R"("")", "null"}) {
    INFO(off);
    auto r = ParseBuildArguments(std::string(R"({"OFFLINE_NODE_WHEN_COMPLETE":)") + off + "}");
    REQUIRE(r.ok());
    CHECK_FALSE(r.value().offline_node_when_complete);
  }
}

JobInfo JobWithParameters(const Strings& names) {
  JobInfo job;
  job.name = "gate-foo-pep8";
  job.full_name = job.name;
  for (const std::string& n : names) {
    ParameterDefinition def;
    def.name = n;
    def.type = "StringParameterDefinition";
    job.parameters.push_back(def);
  }
  return job;
}

TEST_CASE("parameters the job does not define are dropped (P1)", "[jenkins][model]") {
  auto args = ParseBuildArguments(R"({"ZUUL_UUID":"u","ZUUL_PROJECT":"p","EXTRA":"x","N":1})");
  REQUIRE(args.ok());
  const JobInfo job = JobWithParameters({"N", "ZUUL_UUID"});
  FilteredParameters f = FilterParameters(args.value(), job, {});
  CHECK(f.sent == Pairs{{"ZUUL_UUID", "u"}, {"N", "1"}});
  CHECK(f.dropped == Strings{"ZUUL_PROJECT", "EXTRA"});
  CHECK(f.overridden.empty());
}

TEST_CASE("adapter-owned parameters override client keys", "[jenkins][model]") {
  auto args =
      ParseBuildArguments(R"({"GEARMAN_NODE":"evil","A":"1","GEARMAN_UNIQUE":"client","B":"2"})");
  REQUIRE(args.ok());
  const JobInfo job = JobWithParameters({"A", "B", "GEARMAN_NODE", "GEARMAN_UNIQUE"});
  FilteredParameters f = FilterParameters(
      args.value(), job, {{"GEARMAN_NODE", "bare-trusty-123"}, {"GEARMAN_UNIQUE", "uuid"}});
  CHECK(f.sent == Pairs{{"A", "1"},
                        {"B", "2"},
                        {"GEARMAN_NODE", "bare-trusty-123"},
                        {"GEARMAN_UNIQUE", "uuid"}});
  CHECK(f.overridden == Strings{"GEARMAN_NODE", "GEARMAN_UNIQUE"});
  CHECK(f.dropped.empty());

  // An override the job does not define is not sent; a client key of that name is dropped.
  const JobInfo bare = JobWithParameters({"A"});
  FilteredParameters g =
      FilterParameters(args.value(), bare, {{"GEARMAN_NODE", "n"}, {"GEARMAN_UNIQUE", "uuid"}});
  CHECK(g.sent == Pairs{{"A", "1"}});
  CHECK(g.dropped == Strings{"GEARMAN_NODE", "GEARMAN_UNIQUE", "B"});
  CHECK(g.overridden.empty());

  // No client arguments at all: the overrides alone.
  FilteredParameters h = FilterParameters(BuildArguments{}, job, {{"GEARMAN_UNIQUE", "H:1"}});
  CHECK(h.sent == Pairs{{"GEARMAN_UNIQUE", "H:1"}});
}

StartInfo SpecExample() {
  StartInfo info;
  info.name = "gate-foo-pep8";
  info.number = 1234;
  info.manager = "jenkins01";
  info.worker = "bare-trusty-123_exec-0";
  info.url = "https://jenkins01.example.org/job/gate-foo-pep8/1234/";
  info.node_known = true;
  info.node_name = "bare-trusty-123";
  info.node_labels = {"bare-trusty-123", "bare-trusty"};
  return info;
}

TEST_CASE("start JSON matches the doc/jenkins.md §1.5 example byte for byte", "[jenkins][model]") {
  CHECK(StartJson(SpecExample()) ==
        R"({"name":"gate-foo-pep8","number":1234,"manager":"jenkins01",)"
        R"("worker":"bare-trusty-123_exec-0",)"
        R"("url":"https://jenkins01.example.org/job/gate-foo-pep8/1234/",)"
        R"("node_name":"bare-trusty-123","node_labels":["bare-trusty","bare-trusty-123"]})");
}

TEST_CASE("final JSON appends the result last", "[jenkins][model]") {
  for (const char* result : {"SUCCESS", "UNSTABLE", "FAILURE", "ABORTED", "NOT_BUILT"}) {
    const std::string start = StartJson(SpecExample());
    CHECK(FinalJson(SpecExample(), result) ==
          start.substr(0, start.size() - 1) + ",\"result\":\"" + result + "\"}");
  }
}

TEST_CASE("start JSON variants: no node, built-in node, worker fields", "[jenkins][model]") {
  StartInfo flyweight = SpecExample();
  flyweight.worker = "jenkins01_flyweight";
  flyweight.node_known = false;
  CHECK(StartJson(flyweight) ==
        R"({"name":"gate-foo-pep8","number":1234,"manager":"jenkins01",)"
        R"("worker":"jenkins01_flyweight",)"
        R"("url":"https://jenkins01.example.org/job/gate-foo-pep8/1234/"})");

  StartInfo builtin = SpecExample();
  builtin.worker = "jenkins01_exec-1";
  builtin.node_name = "";
  builtin.node_labels = {"built-in", "linux", "built-in"};
  builtin.emit_worker_fields = true;
  builtin.worker_hostname = "";
  builtin.worker_version = "2.440.3";
  CHECK(FinalJson(builtin, "SUCCESS") ==
        R"({"name":"gate-foo-pep8","number":1234,"manager":"jenkins01",)"
        R"("worker":"jenkins01_exec-1",)"
        R"("url":"https://jenkins01.example.org/job/gate-foo-pep8/1234/",)"
        R"("node_name":"","node_labels":["built-in","linux"],)"
        R"("worker_name":"jenkins01_exec-1","worker_hostname":"","worker_program":"Jenkins",)"
        R"("worker_version":"2.440.3","result":"SUCCESS"})");
}

TEST_CASE("start JSON escapes strings and keeps UTF-8", "[jenkins][model]") {
  StartInfo info;
  info.name = "caf\xC3\xA9 \"q\" \\ \x01\t\n\x7F";
  info.number = -1;
  info.manager = "m";
  info.worker = "w";
  info.url = "bad\xFF";
  CHECK(StartJson(info) ==
        "{\"name\":\"caf\xC3\xA9 \\\"q\\\" \\\\ \\u0001\\t\\n\x7F\",\"number\":-1,"
        "\"manager\":\"m\",\"worker\":\"w\",\"url\":\"bad\xEF\xBF\xBD\"}");
  // What we emit parses back as a client would.
  auto round_trip = ParseBuildArguments(StartJson(SpecExample()));
  REQUIRE_FALSE(round_trip.ok());  // node_labels is an array: not valid build arguments
  CHECK_THAT(round_trip.status().message(), Catch::Contains("node_labels"));
}

TEST_CASE("stop arguments accept an int or a decimal string number", "[jenkins][model]") {
  auto zuul = ParseStopArguments(R"({"name":"gate-foo-pep8","number":1234})");
  REQUIRE(zuul.ok());
  CHECK(zuul.value().name == "gate-foo-pep8");
  CHECK(zuul.value().number == 1234);
  auto text = ParseStopArguments(R"({"number":"77","name":"team/deploy"})");
  REQUIRE(text.ok());
  CHECK(text.value().number == 77);
  CHECK(text.value().name == "team/deploy");

  for (const char* bad :
       {R"({"name":"","number":1})", R"({"number":1})", R"({"name":"x"})",
        R"({"name":"x","number":""})", R"({"name":"x","number":"12a"})",
        R"({"name":"x","number":"-3"})", R"({"name":"x","number":"+3"})",
        R"({"name":"x","number":0})", R"({"name":"x","number":1.5})",
        R"({"name":"x","number":null})", R"({"name":"x","number":99999999999999999999})",
        R"({"name":"x","number":"99999999999999999999"})", R"({"name":7,"number":1})", R"(["x",1])",
        "", "{"}) {
    INFO(bad);
    CHECK_FALSE(ParseStopArguments(bad).ok());
  }
}

TEST_CASE("set_description arguments", "[jenkins][model]") {
  auto r = ParseDescriptionArguments(
      R"({"name":"gate-foo-pep8","number":"1234","html_description":"<a href=\"x\">log</a>"})");
  REQUIRE(r.ok());
  CHECK(r.value().name == "gate-foo-pep8");
  CHECK(r.value().number == 1234);
  CHECK(r.value().html_description == "<a href=\"x\">log</a>");
  auto cleared = ParseDescriptionArguments(R"({"name":"j","number":1,"html_description":""})");
  REQUIRE(cleared.ok());
  CHECK(cleared.value().html_description.empty());
  auto missing = ParseDescriptionArguments(R"({"name":"j","number":1})");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.status().message(), Catch::Contains("html_description"));
  CHECK_FALSE(ParseDescriptionArguments(R"({"name":"j","number":1,"html_description":5})").ok());
  CHECK_FALSE(ParseDescriptionArguments(R"({"number":1,"html_description":"d"})").ok());
}

}  // namespace
}  // namespace roundhouse::jenkins
