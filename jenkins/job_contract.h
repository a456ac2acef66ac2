// The Gearman-facing job contract (doc/jenkins.md §1.4–1.8): the arguments of a build:* job and
// the parameters sent for them, the start and final JSON its client receives, and the arguments
// of stop:<MANAGER> and set_description:<MANAGER>. Jenkins' own replies are in rest_model.h.
//
// Pure: no I/O, no clock, no logging. Every parser is total: any bytes give either a value or an
// error Status naming what was wrong.
//
// Thread-safety: free functions on values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "jenkins/rest_model.h"

namespace roundhouse::jenkins {

// §1.4: the DATA of a build:* job. Empty data = no parameters. Errors: not UTF-8, not JSON, not an
// object, a nested object/array value. Strings as is, numbers as their JSON text, booleans
// "true"/"false", null omits the key, duplicate keys: last wins (a last null omits it). Order:
// first occurrence. UTF-8 is validated strictly (no overlong forms, surrogates or NUL bytes); a
// leading UTF-8 BOM is ignored.
struct BuildArguments {
  std::vector<std::pair<std::string, std::string>> parameters;
  // OFFLINE_NODE_WHEN_COMPLETE is exactly 1, true, True or TRUE.
  bool offline_node_when_complete = false;
  const std::string* Find(std::string_view key) const;
};
Result<BuildArguments> ParseBuildArguments(std::string_view data);

// §4.6 P1: keeps the keys the job defines, in argument order; the rest are returned in `dropped`.
// `overrides` (the pin parameter, unique_param) are set last and replace client keys of the same
// name (those names are reported in `overridden`); an override whose name the job does not
// define is not sent.
struct FilteredParameters {
  std::vector<std::pair<std::string, std::string>> sent;
  std::vector<std::string> dropped;
  std::vector<std::string> overridden;
};
FilteredParameters FilterParameters(
    const BuildArguments& arguments, const JobInfo& job,
    const std::vector<std::pair<std::string, std::string>>& overrides);

// doc/jenkins.md §1.5 start JSON, compact, keys in that order. `node_name`/`node_labels` are
// omitted when `node_known` is false; labels are sorted by the function. `worker_*` only with
// `emit_worker_fields`.
struct StartInfo {
  std::string name;
  int64_t number = 0;
  std::string manager;
  std::string worker;
  std::string url;
  bool node_known = false;
  std::string node_name;
  std::vector<std::string> node_labels;
  bool emit_worker_fields = false;
  std::string worker_hostname;  // node name
  std::string worker_version;   // X-Jenkins
};
std::string StartJson(const StartInfo& info);
// Start JSON + `"result":<result>` as its last key.
std::string FinalJson(const StartInfo& info, std::string_view result);

// §1.7 / §1.8 arguments. `number` may be a JSON integer or a decimal string.
struct StopArguments {
  std::string name;
  int64_t number = 0;
};
Result<StopArguments> ParseStopArguments(std::string_view data);
struct DescriptionArguments {
  std::string name;
  int64_t number = 0;
  std::string html_description;
};
Result<DescriptionArguments> ParseDescriptionArguments(std::string_view data);

}  // namespace roundhouse::jenkins
