// Jenkins REST models: see rest_model.h. Every RapidJSON access below is preceded by a type
// check (IsObject before FindMember, IsArray before iterating, IsString before GetString, ...), so
// no RapidJSON assertion is reachable from input. Documents are parsed by ParseJsonObject
// (json_document.h): UTF-8 validated, nesting depth capped, iterative parser.
#include "jenkins/rest_model.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>

#include "base/text.h"
#include "jenkins/json_document.h"
#include "protocol/http.h"

namespace roundhouse::jenkins {
namespace {

using rapidjson::Value;

// Folders nested deeper than this in an R2 answer are an error (folder_depth is at most 10).
constexpr int kMaxFolderNesting = 64;

// RFC 3986: every byte outside the unreserved set as %XX, as in any path segment or query value.
std::string PercentEncode(std::string_view text) {
  return protocol::http::PercentEncodePathSegment(text);
}

// The member `name` if it is an array, else nullptr.
const Value* GetArray(const Value& obj, const char* name) {
  const Value* v = Member(obj, name);
  return v != nullptr && v->IsArray() ? v : nullptr;
}

// A scalar as text (booleans "true"/"false", numbers in their shortest form); nullopt for null,
// objects and arrays.
std::optional<std::string> ScalarText(const Value& v) {
  if (v.IsString()) return Text(v);
  if (v.IsBool()) return std::string(v.GetBool() ? "true" : "false");
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  if (v.IsUint64()) return std::to_string(v.GetUint64());
  if (v.IsNumber()) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    if (!writer.Double(v.GetDouble())) return std::nullopt;  // NaN/Inf cannot come from JSON
    return std::string(buffer.GetString(), buffer.GetSize());
  }
  return std::nullopt;
}

// actions[].parameters[] {name, value} into `out`; entries without a name or with a non-scalar
// value are skipped (Jenkins omits the value of password parameters).
void CollectActionParameters(const Value& obj, std::map<std::string, std::string>* out) {
  const Value* actions = GetArray(obj, "actions");
  if (actions == nullptr) return;
  for (const Value& action : actions->GetArray()) {
    const Value* parameters = GetArray(action, "parameters");
    if (parameters == nullptr) continue;
    for (const Value& p : parameters->GetArray()) {
      std::optional<std::string> name = OptionalMember<std::string>(p, "name");
      const Value* value = Member(p, "value");
      if (!name || value == nullptr) continue;
      std::optional<std::string> text = ScalarText(*value);
      if (text) (*out)[*name] = std::move(*text);
    }
  }
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Fills `job` from one R2/R3 job object. `parent` is the folder's full name ("" at top level).
Status FillJob(const Value& obj, std::string_view parent, JobInfo* job) {
  std::optional<std::string> name = OptionalMember<std::string>(obj, "name");
  if (!name || name->empty()) return Status::Error("job without a name");
  job->name = std::move(*name);
  job->full_name = MemberOr<std::string>(obj, "fullName", "");
  if (job->full_name.empty()) {
    job->full_name = parent.empty() ? job->name : std::string(parent) + "/" + job->name;
  }
  job->cls = MemberOr<std::string>(obj, "_class", "");
  job->url = MemberOr<std::string>(obj, "url", "");
  job->buildable = MemberOr<bool>(obj, "buildable", true);
  job->disabled = MemberOr<bool>(obj, "disabled", false);
  job->concurrent_build = MemberOr<bool>(obj, "concurrentBuild", true);
  job->label_expression = OptionalMember<std::string>(obj, "labelExpression");
  job->in_queue = MemberOr<bool>(obj, "inQueue", false);
  if (const Value* last = Member(obj, "lastBuild"); last != nullptr && last->IsObject()) {
    job->last_build_number = OptionalMember<int64_t>(*last, "number");
    job->last_build_building = MemberOr<bool>(*last, "building", false);
  }
  if (const Value* properties = GetArray(obj, "property")) {
    for (const Value& property : properties->GetArray()) {
      const Value* definitions = GetArray(property, "parameterDefinitions");
      if (definitions == nullptr) continue;
      for (const Value& d : definitions->GetArray()) {
        ParameterDefinition def;
        def.name = MemberOr<std::string>(d, "name", "");
        if (def.name.empty()) continue;
        def.cls = MemberOr<std::string>(d, "_class", "");
        def.type = MemberOr<std::string>(d, "type", "");
        if (const Value* dv = Member(d, "defaultParameterValue")) {
          if (const Value* value = Member(*dv, "value")) def.default_value = ScalarText(*value);
        }
        job->parameters.push_back(std::move(def));
      }
    }
  }
  return Status::Ok();
}

// R2: objects without `buildable` are not jobs: folders (with `jobs`) are descended into, others
// (a folder below the tree's depth, which Jenkins returns without `jobs`) are skipped.
Status CollectJobs(const Value& jobs, std::string_view parent, int nesting,
                   std::vector<JobInfo>* out) {
  if (nesting > kMaxFolderNesting) return Status::Error("jobs: folders nested too deeply");
  for (const Value& item : jobs.GetArray()) {
    if (!item.IsObject()) return Status::Error("jobs: an entry is not an object");
    if (Member(item, "buildable") == nullptr) {
      const Value* inner = GetArray(item, "jobs");
      if (inner == nullptr) continue;
      std::string folder = MemberOr<std::string>(item, "fullName", "");
      if (folder.empty()) {
        const std::string name = MemberOr<std::string>(item, "name", "");
        if (name.empty()) return Status::Error("jobs: folder without a name");
        folder = parent.empty() ? name : std::string(parent) + "/" + name;
      }
      Status st = CollectJobs(*inner, folder, nesting + 1, out);
      if (!st.ok()) return st;
      continue;
    }
    JobInfo job;
    Status st = FillJob(item, parent, &job);
    if (!st.ok()) return Status::Error("jobs: " + st.message());
    out->push_back(std::move(job));
  }
  return Status::Ok();
}

// executors[] / oneOffExecutors[]; an entry without `number` takes its array index, and without
// `idle` is idle iff it has no currentExecutable.
Status CollectExecutors(const Value& obj, const char* field, std::vector<ExecutorInfo>* out) {
  const Value* arr = Member(obj, field);
  if (arr == nullptr || arr->IsNull()) return Status::Ok();
  if (!arr->IsArray()) return Status::Error(std::string(field) + " is not an array");
  int index = 0;
  for (const Value& e : arr->GetArray()) {
    if (!e.IsObject()) return Status::Error(std::string(field) + ": an entry is not an object");
    ExecutorInfo info;
    info.number = MemberOr<int>(e, "number", index);
    const Value* current = Member(e, "currentExecutable");
    const bool running = current != nullptr && current->IsObject();
    if (running) {
      info.build_url = MemberOr<std::string>(*current, "url", "");
      info.build_number = OptionalMember<int64_t>(*current, "number");
    }
    info.idle = MemberOr<bool>(e, "idle", !running);
    out->push_back(std::move(info));
    ++index;
  }
  return Status::Ok();
}

Status FillBuild(const Value& obj, BuildInfo* build) {
  std::optional<int64_t> number = OptionalMember<int64_t>(obj, "number");
  if (!number) return Status::Error("build without an integer number");
  build->number = *number;
  build->url = MemberOr<std::string>(obj, "url", "");
  build->building = MemberOr<bool>(obj, "building", false);
  build->result = OptionalMember<std::string>(obj, "result");
  build->timestamp = OptionalMember<int64_t>(obj, "timestamp").value_or(0);
  build->duration = OptionalMember<int64_t>(obj, "duration").value_or(0);
  build->estimated_duration = OptionalMember<int64_t>(obj, "estimatedDuration").value_or(-1);
  build->queue_id = OptionalMember<int64_t>(obj, "queueId").value_or(0);
  build->built_on = OptionalMember<std::string>(obj, "builtOn");
  CollectActionParameters(obj, &build->parameters);
  return Status::Ok();
}

}  // namespace

const char kTreeController[] = "mode,numExecutors,quietingDown,useCrumbs,useSecurity";
const char kTreeJob[] =
    "_class,name,fullName,url,buildable,disabled,concurrentBuild,labelExpression,inQueue,"
    "lastBuild[number,building],"
    "property[parameterDefinitions[_class,name,type,defaultParameterValue[value]]]";
const char kTreeComputers[] =
    "busyExecutors,totalExecutors,computer[_class,displayName,offline,temporarilyOffline,"
    "offlineCauseReason,numExecutors,idle,assignedLabels[name],"
    "executors[number,idle,currentExecutable[number,url]],"
    "oneOffExecutors[currentExecutable[number,url]]]";
const char kTreeLabelNodes[] = "nodes[nodeName,mode]";
const char kTreeQueueItem[] =
    "_class,id,why,blocked,buildable,stuck,cancelled,inQueueSince,executable[number,url]";
const char kTreeQueue[] =
    "items[_class,id,why,blocked,buildable,inQueueSince,task[name,url],"
    "actions[parameters[name,value]]]";
const char kTreeBuild[] =
    "_class,number,url,building,result,timestamp,duration,estimatedDuration,queueId,builtOn,"
    "description";
const char kTreeBuilds[] =
    "builds[number,queueId,building,result,url,actions[parameters[name,value]]]{0,50}";
const char kTreeComputer[] =
    "executors[number,currentExecutable[url]],oneOffExecutors[currentExecutable[url]]";

std::string JobsTree(int folder_depth) {
  folder_depth = std::clamp(folder_depth, 0, kMaxFolderNesting);
  std::string tree;
  for (int i = 0; i <= folder_depth; ++i) {
    tree += "jobs[";
    tree += kTreeJob;
    if (i < folder_depth) tree += ',';
  }
  tree.append(static_cast<size_t>(folder_depth) + 1, ']');
  return tree;
}

std::string JobPath(std::string_view full_name) {
  std::string path;
  if (full_name.empty()) return path;
  size_t start = 0;
  while (true) {
    const size_t slash = full_name.find('/', start);
    path += "job/";
    path += PercentEncode(full_name.substr(start, slash - start));
    path += '/';
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return path;
}

std::string ComputerPath(std::string_view node_name) {
  if (node_name == "built-in" || node_name == "master") {
    return "computer/(" + std::string(node_name) + ")/";
  }
  return "computer/" + PercentEncode(node_name) + "/";
}

std::string LabelPath(std::string_view expression) {
  return "label/" + PercentEncode(expression) + "/";
}

std::optional<int64_t> QueueIdFromLocation(std::string_view location) {
  constexpr std::string_view kMarker = "queue/item/";
  while (!location.empty() && (location.back() == ' ' || location.back() == '\t' ||
                               location.back() == '\r' || location.back() == '\n')) {
    location.remove_suffix(1);
  }
  if (!location.empty() && location.back() == '/') location.remove_suffix(1);
  const size_t at = location.rfind(kMarker);
  if (at == std::string_view::npos || (at > 0 && location[at - 1] != '/')) return std::nullopt;
  const std::string_view digits = location.substr(at + kMarker.size());
  if (digits.empty() || digits.front() == '-') return std::nullopt;
  return ParseDecimal<int64_t>(digits);
}

std::string ApiJson(std::string_view tree) { return "api/json?tree=" + PercentEncode(tree); }

Result<ControllerInfo> ParseController(std::string_view json) {
  rapidjson::Document doc;
  Status st = ParseJsonObject(json, "controller", &doc);
  if (!st.ok()) return st;
  ControllerInfo info;
  info.quieting_down = MemberOr<bool>(doc, "quietingDown", false);
  info.use_security = MemberOr<bool>(doc, "useSecurity", false);
  info.use_crumbs = MemberOr<bool>(doc, "useCrumbs", false);
  info.num_executors = MemberOr<int>(doc, "numExecutors", 0);
  return info;
}

bool JobInfo::flyweight() const {
  return EndsWith(cls, "WorkflowJob") || EndsWith(cls, "MatrixProject");
}

const ParameterDefinition* JobInfo::FindParameter(std::string_view parameter) const {
  for (const ParameterDefinition& def : parameters) {
    if (def.name == parameter) return &def;
  }
  return nullptr;
}

Result<std::vector<JobInfo>> ParseJobs(std::string_view json) {
  rapidjson::Document doc;
  Status st = ParseJsonObject(json, "jobs", &doc);
  if (!st.ok()) return st;
  const Value* jobs = GetArray(doc, "jobs");
  if (jobs == nullptr) return Status::Error("jobs: no `jobs` array");
  std::vector<JobInfo> out;
  st = CollectJobs(*jobs, "", 0, &out);
  if (!st.ok()) return st;
  return out;
}

Result<JobInfo> ParseJob(std::string_view json) {
  rapidjson::Document doc;
  Status st = ParseJsonObject(json, "job", &doc);
  if (!st.ok()) return st;
  JobInfo job;
  st = FillJob(doc, "", &job);
  if (!st.ok()) return Status::Error("job: " + st.message());
  return job;
}

Result<std::vector<ComputerInfo>> ParseComputers(std::string_view json, bool builtin_legacy_name) {
  rapidjson::Document doc;
  Status st = ParseJsonObject(json, "computers", &doc);
  if (!st.ok()) return st;
  const Value* computers = GetArray(doc, "computer");
  if (computers == nullptr) return Status::Error("computers: no `computer` array");
  std::vector<ComputerInfo> out;
  for (const Value& c : computers->GetArray()) {
    if (!c.IsObject()) return Status::Error("computers: an entry is not an object");
    ComputerInfo info;
    info.builtin = EndsWith(MemberOr<std::string>(c, "_class", ""), "$MasterComputer");
    if (info.builtin) {
      info.name = builtin_legacy_name ? "master" : "built-in";
    } else {
      info.name = MemberOr<std::string>(c, "displayName", "");
      if (info.name.empty()) return Status::Error("computers: an agent without a displayName");
    }
    info.offline = MemberOr<bool>(c, "offline", false);
    info.temporarily_offline = MemberOr<bool>(c, "temporarilyOffline", false);
    info.offline_cause = MemberOr<std::string>(c, "offlineCauseReason", "");
    info.num_executors = MemberOr<int>(c, "numExecutors", 0);
    if (const Value* labels = GetArray(c, "assignedLabels")) {
      for (const Value& label : labels->GetArray()) {
        if (auto name = OptionalMember<std::string>(label, "name")) {
          info.labels.push_back(std::move(*name));
        }
      }
    }
    st = CollectExecutors(c, "executors", &info.executors);
    if (st.ok()) st = CollectExecutors(c, "oneOffExecutors", &info.one_off_executors);
    if (!st.ok()) return Status::Error("computers: " + info.name + ": " + st.message());
    out.push_back(std::move(info));
  }
  return out;
}

bool UsesLegacyBuiltinName(std::string_view version) {
  // "<major>.<minor>[anything]"; each number at most 9 digits.
  auto number = [&version](int64_t* out) {
    size_t n = 0;
    while (n < version.size() && n < 10 && version[n] >= '0' && version[n] <= '9') ++n;
    if (n == 0 || n > 9) return false;
    *out = 0;
    for (size_t i = 0; i < n; ++i) *out = *out * 10 + (version[i] - '0');
    version.remove_prefix(n);
    return true;
  };
  int64_t major = 0;
  int64_t minor = 0;
  if (!number(&major)) return false;
  if (version.empty() || version.front() != '.') return false;
  version.remove_prefix(1);
  if (!number(&minor)) return false;
  return major < 2 || (major == 2 && minor < 307);
}

Result<std::vector<LabelNode>> ParseLabelNodes(std::string_view json) {
  rapidjson::Document doc;
  Status st = ParseJsonObject(json, "label", &doc);
  if (!st.ok()) return st;
  const Value* nodes = GetArray(doc, "nodes");
  if (nodes == nullptr) return Status::Error("label: no `nodes` array");
  std::vector<LabelNode> out;
  for (const Value& n : nodes->GetArray()) {
    if (!n.IsObject()) return Status::Error("label: a node is not an object");
    std::optional<std::string> name = OptionalMember<std::string>(n, "nodeName");
    if (!name) return Status::Error("label: a node without nodeName");
    out.push_back(LabelNode{std::move(*name), MemberOr<std::string>(n, "mode", "")});
  }
  return out;
}

Result<ComputerInfo> ParseComputer(std::string_view json) {
  rapidjson::Document doc;
  Status st = ParseJsonObject(json, "computer", &doc);
  if (!st.ok()) return st;
  ComputerInfo info;
  st = CollectExecutors(doc, "executors", &info.executors);
  if (st.ok()) st = CollectExecutors(doc, "oneOffExecutors", &info.one_off_executors);
  if (!st.ok()) return Status::Error("computer: " + st.message());
  info.num_executors = static_cast<int>(info.executors.size());
  return info;
}

Result<QueueItem> ParseQueueItem(std::string_view json) {
  rapidjson::Document doc;
  Status st = ParseJsonObject(json, "queue item", &doc);
  if (!st.ok()) return st;
  QueueItem item;
  std::optional<int64_t> id = OptionalMember<int64_t>(doc, "id");
  if (!id) return Status::Error("queue item: no integer id");
  item.id = *id;
  const std::string cls = MemberOr<std::string>(doc, "_class", "");
  if (EndsWith(cls, "$WaitingItem")) {
    item.kind = QueueItemKind::kWaiting;
  } else if (EndsWith(cls, "$BlockedItem")) {
    item.kind = QueueItemKind::kBlocked;
  } else if (EndsWith(cls, "$BuildableItem")) {
    item.kind = QueueItemKind::kBuildable;
  } else if (EndsWith(cls, "$LeftItem")) {
    item.kind = QueueItemKind::kLeft;
  }
  item.why = MemberOr<std::string>(doc, "why", "");
  item.blocked = MemberOr<bool>(doc, "blocked", false);
  item.buildable = MemberOr<bool>(doc, "buildable", false);
  item.stuck = MemberOr<bool>(doc, "stuck", false);
  item.cancelled = MemberOr<bool>(doc, "cancelled", false);
  item.in_queue_since = OptionalMember<int64_t>(doc, "inQueueSince").value_or(0);
  if (const Value* exe = Member(doc, "executable"); exe != nullptr && exe->IsObject()) {
    item.build_number = OptionalMember<int64_t>(*exe, "number");
    item.build_url = MemberOr<std::string>(*exe, "url", "");
  }
  return item;
}

Result<std::vector<QueueEntry>> ParseQueue(std::string_view json) {
  rapidjson::Document doc;
  Status st = ParseJsonObject(json, "queue", &doc);
  if (!st.ok()) return st;
  const Value* items = GetArray(doc, "items");
  if (items == nullptr) return Status::Error("queue: no `items` array");
  std::vector<QueueEntry> out;
  for (const Value& i : items->GetArray()) {
    std::optional<int64_t> id = OptionalMember<int64_t>(i, "id");
    if (!id) return Status::Error("queue: an item without an integer id");
    QueueEntry entry;
    entry.id = *id;
    if (const Value* task = Member(i, "task")) {
      entry.task_name = MemberOr<std::string>(*task, "name", "");
      entry.task_url = MemberOr<std::string>(*task, "url", "");
    }
    CollectActionParameters(i, &entry.parameters);
    out.push_back(std::move(entry));
  }
  return out;
}

Result<BuildInfo> ParseBuild(std::string_view json) {
  rapidjson::Document doc;
  Status st = ParseJsonObject(json, "build", &doc);
  if (!st.ok()) return st;
  BuildInfo build;
  st = FillBuild(doc, &build);
  if (!st.ok()) return Status::Error("build: " + st.message());
  return build;
}

Result<std::vector<BuildInfo>> ParseBuilds(std::string_view json) {
  rapidjson::Document doc;
  Status st = ParseJsonObject(json, "builds", &doc);
  if (!st.ok()) return st;
  const Value* builds = GetArray(doc, "builds");
  if (builds == nullptr) builds = GetArray(doc, "allBuilds");
  if (builds == nullptr) return Status::Error("builds: no `builds` or `allBuilds` array");
  std::vector<BuildInfo> out;
  for (const Value& b : builds->GetArray()) {
    if (!b.IsObject()) return Status::Error("builds: an entry is not an object");
    BuildInfo build;
    st = FillBuild(b, &build);
    if (!st.ok()) return Status::Error("builds: " + st.message());
    out.push_back(std::move(build));
  }
  return out;
}

Result<Crumb> ParseCrumb(std::string_view json) {
  rapidjson::Document doc;
  Status st = ParseJsonObject(json, "crumb", &doc);
  if (!st.ok()) return st;
  Crumb crumb;
  crumb.field = MemberOr<std::string>(doc, "crumbRequestField", "");
  crumb.value = MemberOr<std::string>(doc, "crumb", "");
  if (crumb.field.empty() || crumb.value.empty()) {
    return Status::Error("crumb: missing crumb or crumbRequestField");
  }
  // Both are sent back as a request header: the field must be an RFC 9110 token and the value
  // visible ASCII, so a master cannot inject header lines (CR/LF) or bytes into our requests.
  constexpr size_t kMaxCrumbText = 1024;
  auto is_tchar = [](unsigned char c) {
    return std::isalnum(c) != 0 ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  };
  if (crumb.field.size() > kMaxCrumbText || crumb.value.size() > kMaxCrumbText ||
      !std::all_of(crumb.field.begin(), crumb.field.end(),
                   [&](char c) { return is_tchar(static_cast<unsigned char>(c)); }) ||
      !std::all_of(crumb.value.begin(), crumb.value.end(),
                   [](char c) { return c > 0x20 && c < 0x7F; })) {
    return Status::Error("crumb: crumb or crumbRequestField is not a valid header field");
  }
  return crumb;
}

}  // namespace roundhouse::jenkins
