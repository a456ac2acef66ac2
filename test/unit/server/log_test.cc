// Levelled logging (base/log.h) and the system clock.
#include "base/log.h"

#include <stdio.h>
#include <time.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "test/unit/server/server_test_util.h"

using Catch::Matchers::Contains;
using roundhouse::testing::TempDir;
namespace rlog = roundhouse::log;

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "2024-05-01T12:34:56.789Z". (Hand-written: std::regex trips g++ 12's -Wmaybe-uninitialized
// under the sanitizer build.)
bool IsTimestamp(std::string_view t) {
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (t.size() != kShape.size()) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    bool ok = kShape[i] == 'd' ? (t[i] >= '0' && t[i] <= '9') : t[i] == kShape[i];
    if (!ok) return false;
  }
  return true;
}

// Restores the process-wide logger after each test.
struct LogGuard {
  ~LogGuard() {
    (void)rlog::Open("stderr");
    rlog::SetLevel(rlog::Level::kError);
  }
};

int g_evaluations = 0;
int CountEvaluation() { return ++g_evaluations; }

}  // namespace

TEST_CASE("level names round-trip and parse in any case", "[log]") {
  const char* const names[] = {"FATAL",   "ALERT",  "CRITICAL", "ERROR",
                               "WARNING", "NOTICE", "INFO",     "DEBUG"};
  for (int i = 0; i < 8; ++i) {
    auto level = static_cast<rlog::Level>(i);
    CHECK(rlog::LevelName(level) == names[i]);
    rlog::Level parsed = rlog::Level::kFatal;
    REQUIRE(rlog::ParseLevel(names[i], &parsed));
    CHECK(parsed == level);
  }
  rlog::Level parsed = rlog::Level::kFatal;
  CHECK(rlog::ParseLevel("warning", &parsed));
  CHECK(parsed == rlog::Level::kWarning);
  CHECK_FALSE(rlog::ParseLevel("WARN", &parsed));
  CHECK_FALSE(rlog::ParseLevel("", &parsed));
}

TEST_CASE("a line is a UTC ISO-8601 time with ms, the level and the message", "[log]") {
  LogGuard guard;
  TempDir dir;
  std::string path = dir.File("rh.log");
  REQUIRE(rlog::Open(path).ok());
  rlog::SetLevel(rlog::Level::kInfo);
  rlog::Write(rlog::Level::kInfo, "job %s queued %d", "H:x:1", 42);
  auto lines = Lines(ReadAll(path));
  REQUIRE(lines.size() == 1);
  REQUIRE(lines[0].size() > 25);
  CHECK(IsTimestamp(lines[0].substr(0, 24)));
  CHECK(lines[0].substr(24) == " INFO job H:x:1 queued 42");

  // The timestamp is now, in UTC.
  char today[16];
  time_t now = time(nullptr);
  tm utc{};
  gmtime_r(&now, &utc);
  strftime(today, sizeof today, "%Y-%m-%d", &utc);
  CHECK_THAT(lines[0], Contains(today));
}

TEST_CASE("lines below the level are not written and RH_LOG skips their arguments", "[log]") {
  LogGuard guard;
  TempDir dir;
  std::string path = dir.File("rh.log");
  REQUIRE(rlog::Open(path).ok());
  rlog::SetLevel(rlog::Level::kWarning);
  CHECK(rlog::Enabled(rlog::Level::kError));
  CHECK(rlog::Enabled(rlog::Level::kWarning));
  CHECK_FALSE(rlog::Enabled(rlog::Level::kNotice));
  g_evaluations = 0;
  RH_LOG(kDebug, "debug %d", CountEvaluation());
  RH_LOG(kNotice, "notice %d", CountEvaluation());
  CHECK(g_evaluations == 0);
  RH_LOG(kError, "error %d", CountEvaluation());
  CHECK(g_evaluations == 1);
  auto lines = Lines(ReadAll(path));
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Contains("ERROR error 1"));
  CHECK(rlog::CurrentLevel() == rlog::Level::kWarning);
}

TEST_CASE("control characters in a message cannot start a new line", "[log]") {
  LogGuard guard;
  TempDir dir;
  std::string path = dir.File("rh.log");
  REQUIRE(rlog::Open(path).ok());
  rlog::Write(rlog::Level::kError, "function %s", "evil\nFAKE ERROR line\r");
  auto text = ReadAll(path);
  auto lines = Lines(text);
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Contains("function evil\\x0aFAKE ERROR line\\x0d"));
}

TEST_CASE("a message longer than the stack buffer is written whole", "[log]") {
  LogGuard guard;
  TempDir dir;
  std::string path = dir.File("rh.log");
  REQUIRE(rlog::Open(path).ok());
  std::string big(5000, 'x');
  rlog::Write(rlog::Level::kError, "<%s>", big.c_str());
  auto lines = Lines(ReadAll(path));
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Contains("<" + big + ">"));
}

TEST_CASE("Reopen starts a new file after the old one was moved away", "[log]") {
  LogGuard guard;
  TempDir dir;
  std::string path = dir.File("rh.log");
  REQUIRE(rlog::Open(path).ok());
  rlog::Write(rlog::Level::kError, "before");
  REQUIRE(rename(path.c_str(), dir.File("rh.log.1").c_str()) == 0);
  rlog::Write(rlog::Level::kError, "still old");
  REQUIRE(rlog::Reopen().ok());
  rlog::Write(rlog::Level::kError, "after");
  auto old_lines = Lines(ReadAll(dir.File("rh.log.1")));
  auto new_lines = Lines(ReadAll(path));
  REQUIRE(old_lines.size() == 2);
  CHECK_THAT(old_lines[1], Contains("still old"));
  REQUIRE(new_lines.size() == 1);
  CHECK_THAT(new_lines[0], Contains("after"));
}

TEST_CASE("Reopen is a no-op for stderr and none", "[log]") {
  LogGuard guard;
  REQUIRE(rlog::Open("none").ok());
  CHECK(rlog::Reopen().ok());
  rlog::Write(rlog::Level::kFatal, "goes nowhere");
  REQUIRE(rlog::Open("stderr").ok());
  CHECK(rlog::Reopen().ok());
}

TEST_CASE("opening a log file that cannot be created is an error naming it", "[log]") {
  LogGuard guard;
  auto st = rlog::Open("/nonexistent-roundhouse-test/rh.log");
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.message(), Contains("/nonexistent-roundhouse-test/rh.log"));
  CHECK_FALSE(rlog::Open("").ok());
}

TEST_CASE("lines from many threads never interleave", "[log]") {
  LogGuard guard;
  TempDir dir;
  std::string path = dir.File("rh.log");
  REQUIRE(rlog::Open(path).ok());
  rlog::SetLevel(rlog::Level::kDebug);
  constexpr int kThreads = 8;
  constexpr int kLines = 500;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      std::string filler(200, static_cast<char>('a' + t));
      for (int i = 0; i < kLines; ++i) {
        rlog::Write(rlog::Level::kDebug, "thread %d line %d %s", t, i, filler.c_str());
      }
    });
  }
  for (auto& th : threads) th.join();
  auto lines = Lines(ReadAll(path));
  REQUIRE(lines.size() == static_cast<size_t>(kThreads) * kLines);
  int bad = 0;
  std::vector<int> per_thread(kThreads, 0);
  for (const auto& line : lines) {
    // "<timestamp> DEBUG thread T line I <200 x letter T>"
    int t = -1, i = -1;
    char filler[256] = {};
    bool parsed = line.size() > 25 && IsTimestamp(std::string_view(line).substr(0, 24)) &&
                  sscanf(line.c_str() + 24, " DEBUG thread %d line %d %255s", &t, &i, filler) == 3;
    if (!parsed || t < 0 || t >= kThreads ||
        std::string(filler) != std::string(200, static_cast<char>('a' + t))) {
      ++bad;
      continue;
    }
    ++per_thread[t];
  }
  CHECK(per_thread == std::vector<int>(kThreads, kLines));
  CHECK(bad == 0);
}

TEST_CASE("the system clock reads real time", "[clock]") {
  roundhouse::SystemClock clock;
  int64_t a = clock.MonotonicMs();
  int64_t b = clock.MonotonicMs();
  CHECK(b >= a);
  int64_t now = static_cast<int64_t>(time(nullptr));
  CHECK(clock.UnixSeconds() >= now - 1);
  CHECK(clock.UnixSeconds() <= now + 1);
  int64_t us = clock.UnixMicros();
  CHECK(us / 1'000'000 >= now - 1);
  CHECK(us / 1'000'000 <= now + 1);
}
