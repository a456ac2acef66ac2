// libFuzzer target for every Jenkins reply parser (R1-R11, the W0 crumb) and the Gearman-side
// JSON the adapter reads (build, stop and set_description arguments): jenkins/model.cc and
// jenkins/json_document.cc are compiled in with the fuzzer flags.
//
// Input layout: byte 0 picks the parser (modulo their number), the rest is the reply body.
// Nothing may crash, hang or allocate beyond the input's size (libFuzzer's -rss_limit_mb), and
// the invariants below must hold.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "jenkins/job_contract.h"
#include "jenkins/json_document.h"
#include "jenkins/rest_model.h"

namespace roundhouse::jenkins {
namespace {

void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_jenkins invariant failed: %s\n", what);
    std::abort();
  }
}

// A parse that succeeded did so on well-formed UTF-8 nested within the limit.
void CheckAccepted(std::string_view json) {
  Require(IsValidUtf8(json), "accepted input is valid UTF-8");
  Require(JsonNestingDepth(json, kMaxJsonDepth) <= kMaxJsonDepth, "accepted input within depth");
}

template <typename R>
void Check(const R& result, std::string_view json) {
  if (result.ok()) CheckAccepted(json);
}

void Run(uint8_t which, std::string_view body) {
  switch (which % 15) {
    case 0: Check(ParseController(body), body); break;
    case 1: Check(ParseJobs(body), body); break;
    case 2: Check(ParseJob(body), body); break;
    case 3: Check(ParseComputers(body, false), body); break;
    case 4: Check(ParseComputers(body, true), body); break;
    case 5: Check(ParseLabelNodes(body), body); break;
    case 6: Check(ParseComputer(body), body); break;
    case 7: Check(ParseQueueItem(body), body); break;
    case 8: Check(ParseQueue(body), body); break;
    case 9: Check(ParseBuild(body), body); break;
    case 10: Check(ParseBuilds(body), body); break;
    case 11: {
      auto crumb = ParseCrumb(body);
      if (crumb.ok()) {
        CheckAccepted(body);
        // Sent back as a request header: never a control byte, never a separator in the name.
        for (char c : crumb.value().field) Require(c > 0x20 && c < 0x7F && c != ':', "crumb field");
        for (char c : crumb.value().value) Require(c > 0x20 && c < 0x7F, "crumb value");
      }
      break;
    }
    case 12: {
      auto args = ParseBuildArguments(body);
      if (args.ok() && !body.empty()) CheckAccepted(body);
      break;
    }
    case 13: Check(ParseStopArguments(body), body); break;
    case 14: Check(ParseDescriptionArguments(body), body); break;
  }
  // The helpers themselves on raw bytes.
  (void)JsonNestingDepth(body, kMaxJsonDepth);
  (void)QueueIdFromLocation(body);
  (void)UsesLegacyBuiltinName(body);
}

}  // namespace
}  // namespace roundhouse::jenkins

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  roundhouse::jenkins::Run(data[0],
                           std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  return 0;
}
