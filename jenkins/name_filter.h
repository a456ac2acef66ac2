// A compiled regular expression over job and function names (`job_include`, `job_exclude`,
// `name_filter`, doc/jenkins.md §4.1 and §4.12 N3): ECMAScript syntax, searched anywhere in
// the name. Kept behind this small type so <regex> is compiled in one place.
//
// Thread-safety: const methods may be called concurrently.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace roundhouse::jenkins {

class NameFilter {
 public:
  // Errors carry the regex library's message.
  static Result<NameFilter> Compile(const std::string& pattern);

  NameFilter(NameFilter&&) noexcept;
  NameFilter& operator=(NameFilter&&) noexcept;
  ~NameFilter();

  // True when the pattern matches somewhere in `name`.
  bool Search(std::string_view name) const;

 private:
  struct Impl;
  explicit NameFilter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace roundhouse::jenkins
