// Explaining why a file the operator named cannot be created or opened: which part of the path
// is wrong (a missing directory, a component that is not a directory, a directory the server's
// user may not write), so start-up errors name the cause instead of repeating the path.
//
// Thread-safety: pure apart from stat(2)/access(2) on the path; call from any thread.
#pragma once

#include <string>

namespace roundhouse {

// For a file the server wants to create or open for writing at `path` (`what` names it, e.g.
// "queue database"): the first problem found walking the path, as a sentence such as
// "directory /var/lib/roundhouse does not exist (create it, or choose another path)", or an
// empty string when no problem is visible (the caller then reports the original error alone).
std::string DescribePathProblem(const std::string& path);

}  // namespace roundhouse
