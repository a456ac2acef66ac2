// Writes the man page roundhouse(8) to stdout. The build runs it (server/meson.build) so the
// installed page is generated from the same option table as --help.
#include <cstdio>
#include <string>

#include "server/config.h"

int main() {
  const std::string page = roundhouse::ManPageText();
  return std::fwrite(page.data(), 1, page.size(), stdout) == page.size() ? 0 : 1;
}
