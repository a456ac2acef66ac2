#include "base/path_problem.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace roundhouse {
namespace {

std::string Parent(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

std::string DescribePathProblem(const std::string& path) {
  if (path.empty()) return "the path is empty";
  const std::string dir = Parent(path);
  // Walk from the root down to the file's directory: the first component that is missing or not
  // a directory is the one to name.
  std::string prefix;
  size_t pos = 0;
  if (dir[0] == '/') {
    prefix = "/";
    pos = 1;
  }
  while (pos <= dir.size()) {
    size_t next = dir.find('/', pos);
    if (next == std::string::npos) next = dir.size();
    if (next > pos) {
      if (!prefix.empty() && prefix.back() != '/') prefix += '/';
      prefix += dir.substr(pos, next - pos);
      struct stat st {};
      if (stat(prefix.c_str(), &st) != 0) {
        if (errno == ENOENT) {
          return "directory " + prefix + " does not exist (create it, or choose another path)";
        }
        if (errno == EACCES) {
          return "directory " + prefix + " cannot be searched by this user";
        }
        return "";
      }
      if (!S_ISDIR(st.st_mode)) return prefix + " is not a directory";
    }
    pos = next + 1;
  }
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return path + " is a directory, not a file";
    if (access(path.c_str(), W_OK) != 0) return path + " is not writable by this user";
    return "";
  }
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    return "directory " + dir + " is not writable by this user (the file must be created there)";
  }
  return "";
}

}  // namespace roundhouse
