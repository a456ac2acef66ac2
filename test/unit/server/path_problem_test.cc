// DescribePathProblem: start-up errors name the part of a path that is wrong.
#include "base/path_problem.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/rh-path-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string path;
};

}  // namespace

TEST_CASE("a missing directory is named, the highest missing one", "[server][path]") {
  TempDir t;
  CHECK(roundhouse::DescribePathProblem(t.path + "/a/b/q.db") ==
        "directory " + t.path + "/a does not exist (create it, or choose another path)");
}

TEST_CASE("a file where a directory should be is named", "[server][path]") {
  TempDir t;
  std::FILE* f = std::fopen((t.path + "/f").c_str(), "w");
  REQUIRE(f != nullptr);
  std::fclose(f);
  CHECK(roundhouse::DescribePathProblem(t.path + "/f/q.db") == t.path + "/f is not a directory");
}

TEST_CASE("a directory where the file should be is named", "[server][path]") {
  TempDir t;
  REQUIRE(mkdir((t.path + "/q.db").c_str(), 0700) == 0);
  CHECK(roundhouse::DescribePathProblem(t.path + "/q.db") ==
        t.path + "/q.db is a directory, not a file");
}

TEST_CASE("a usable path has no problem to report", "[server][path]") {
  TempDir t;
  CHECK(roundhouse::DescribePathProblem(t.path + "/q.db").empty());
  CHECK(roundhouse::DescribePathProblem("relative-name.db").empty());
  CHECK(roundhouse::DescribePathProblem("").empty() == false);
}
