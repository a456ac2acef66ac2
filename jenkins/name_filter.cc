#include "jenkins/name_filter.h"

// GCC 12 reports false -Wmaybe-uninitialized warnings from inside <regex> under the sanitizers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <regex>

namespace roundhouse::jenkins {

struct NameFilter::Impl {
  std::regex re;
};

Result<NameFilter> NameFilter::Compile(const std::string& pattern) {
  try {
    auto impl = std::make_unique<Impl>();
    impl->re = std::regex(pattern, std::regex::ECMAScript);
    return NameFilter(std::move(impl));
  } catch (const std::regex_error& e) {
    return Status::Error(e.what());
  }
}

NameFilter::NameFilter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NameFilter::NameFilter(NameFilter&&) noexcept = default;
NameFilter& NameFilter::operator=(NameFilter&&) noexcept = default;
NameFilter::~NameFilter() = default;

bool NameFilter::Search(std::string_view name) const {
  return std::regex_search(name.begin(), name.end(), impl_->re);
}

}  // namespace roundhouse::jenkins
