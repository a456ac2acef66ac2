// Status and Result<T>: the error currency at layer boundaries (storage, config, Jenkins).
// Lives in base/, the bottom layer every other layer may use (doc/design.md).
// Flow control (need more, would block, shutting down) is never expressed as a Status.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace roundhouse {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !failed_; }
  // Human-readable cause; empty when ok().
  const std::string& message() const { return message_; }

 private:
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}
  bool failed_ = false;
  std::string message_;
};

// Either a value or a failed Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  // The error; only meaningful when !ok().
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

// A value from a peer or a file, fit for an error text: at most 64 bytes, control bytes as '?',
// "..." when cut. Never pass secrets.
inline std::string ErrorExcerpt(std::string_view s) {
  std::string out(s.substr(0, 64));
  for (char& ch : out) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) ch = '?';
  }
  if (s.size() > 64) out += "...";
  return out;
}

}  // namespace roundhouse
