// The one main() for every Catch2 unit-test executable. A run in which no test case ran (a
// name filter that matches nothing, or an executable without tests) fails: Catch2's
// `--warn NoTests` is always on, so a test command that tested nothing cannot pass.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
  Catch::Session session;
  session.configData().warnings = static_cast<Catch::WarnAbout::What>(
      session.configData().warnings | Catch::WarnAbout::NoTests);
  const int rc = session.applyCommandLine(argc, argv);
  if (rc != 0) return rc;
  return session.run();
}
