#include "server/queue_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "base/log.h"

namespace roundhouse::server {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

bool Exists(const std::string& path) {
  struct stat st{};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string Join(const std::string& dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  return dir.back() == '/' ? dir + std::string(name) : dir + "/" + std::string(name);
}

// `path` made absolute with symbolic links resolved; for a file that does not exist yet, its
// directory is resolved instead. Falls back to `path` (open() then reports the problem).
std::string Canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) != nullptr) return buf;
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (::realpath(dir.c_str(), buf) == nullptr) return path;
  const std::string resolved = buf;
  return resolved == "/" ? "/" + base : resolved + "/" + base;
}

// The pid of a process holding a POSIX lock that conflicts with a write lock on the whole file
// open as `fd`: >0, or 0 if nobody holds one (or the holder is in another pid namespace).
int64_t ConflictingLockPid(int fd) {
  struct flock fl{};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK) return 0;
  return fl.l_pid > 0 ? fl.l_pid : 0;
}

// The pid written in the lock file, or 0.
int64_t PidInFile(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return 0;
  const long long pid = std::strtoll(buf, nullptr, 10);
  return pid > 0 ? pid : 0;
}

// A process that has `db` open through SQLite in WAL mode: every such connection holds a read
// lock on the "-shm" file for as long as it is open. Returns its pid, or 0.
int64_t WalUser(const std::string& db) {
  const std::string shm = db + "-shm";
  const int fd = ::open(shm.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return 0;
  struct flock fl{};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  int64_t pid = 0;
  if (::fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) pid = fl.l_pid > 0 ? fl.l_pid : -1;
  ::close(fd);
  return pid;
}

// Renames `from` (a database) and its SQLite side files to `to`. The side files go first and the
// database last: after a crash in between, the next start still finds `from` and finishes the
// move, and no database ever sits without the WAL that belongs to it.
Status RenameDatabase(const std::string& from, const std::string& to) {
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    const std::string side = from + suffix;
    if (!Exists(side)) continue;
    if (::rename(side.c_str(), (to + suffix).c_str()) != 0) {
      return Status::Error("cannot rename " + side + " to " + to + suffix + ": " +
                           ErrnoText(errno));
    }
  }
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Status::Error("cannot rename " + from + " to " + to + ": " + ErrnoText(errno));
  }
  return Status::Ok();
}

}  // namespace

std::string DefaultDatabaseName(uint16_t port) {
  return "roundhouse-" + std::to_string(port) + ".db";
}

DatabaseLock::~DatabaseLock() {
  if (fd_ >= 0) ::close(fd_);
}

DatabaseLock::DatabaseLock(DatabaseLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), lock_path_(std::move(other.lock_path_)) {}

DatabaseLock& DatabaseLock::operator=(DatabaseLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    lock_path_ = std::move(other.lock_path_);
  }
  return *this;
}

Result<DatabaseLock> DatabaseLock::Acquire(const std::string& db_path) {
  DatabaseLock lock;
  lock.lock_path_ = Canonical(db_path) + ".lock";
  const int fd = ::open(lock.lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::Error("cannot create the lock file " + lock.lock_path_ + " of database " +
                         db_path + ": " + ErrnoText(errno));
  }
  struct flock fl{};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;  // l_start = l_len = 0: the whole file
  if (::fcntl(fd, F_SETLK, &fl) != 0) {
    const int err = errno;
    if (err != EACCES && err != EAGAIN) {
      ::close(fd);
      return Status::Error("cannot lock " + lock.lock_path_ + " (database " + db_path +
                           "): " + ErrnoText(err));
    }
    int64_t pid = ConflictingLockPid(fd);
    if (pid == 0) pid = PidInFile(fd);
    ::close(fd);
    const std::string holder = pid > 0 ? "pid " + std::to_string(pid) : "pid unknown";
    return Status::Error("database " + db_path + " is in use by another server (" + holder +
                         ", lock file " + lock.lock_path_ +
                         "); give each server its own --libsqlite3-db");
  }
  lock.fd_ = fd;
  // For people reading the file; the lock itself is what counts, so a failure here is ignored.
  const std::string text = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    RH_LOG(kWarning, "cannot write the pid into %s: %s", lock.lock_path_.c_str(),
           ErrnoText(errno).c_str());
  }
  return lock;
}

Result<QueueFile> ClaimQueueFile(const std::string& configured, uint16_t port,
                                 const std::string& dir) {
  QueueFile file;
  file.path = configured.empty() ? Join(dir, DefaultDatabaseName(port)) : configured;
  auto lock = DatabaseLock::Acquire(file.path);
  if (!lock.ok()) return lock.status();
  file.lock = std::move(lock).value();
  if (!configured.empty() || Exists(file.path)) return file;

  // A default-named server with no file of its own yet: adopt the database of the old default
  // name, unless someone else uses it.
  const std::string legacy = Join(dir, kLegacyDatabaseName);
  if (!Exists(legacy)) return file;
  auto legacy_lock = DatabaseLock::Acquire(legacy);
  if (!legacy_lock.ok()) {
    RH_LOG(kNotice, "%s is not adopted as %s: %s", legacy.c_str(), file.path.c_str(),
           legacy_lock.status().message().c_str());
    return file;
  }
  if (const int64_t user = WalUser(legacy); user != 0) {
    const std::string who = user > 0 ? "pid " + std::to_string(user) : "pid unknown";
    RH_LOG(kNotice,
           "%s is not adopted as %s: it is open in another process (%s), perhaps an older "
           "roundhouse; starting with an empty queue",
           legacy.c_str(), file.path.c_str(), who.c_str());
    return file;
  }
  if (Status s = RenameDatabase(legacy, file.path); !s.ok()) return s;
  RH_LOG(kNotice,
         "renamed %s to %s: the default database name now carries the port "
         "(--libsqlite3-db chooses another)",
         legacy.c_str(), file.path.c_str());
  return file;
}

}  // namespace roundhouse::server
