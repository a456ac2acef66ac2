// server/queue_file: one server per database file (a lock held for the process's life), the
// default name per port, and the adoption of the old default ./roundhouse.db.

#include "server/queue_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "server_test_util.h"

namespace roundhouse::server {
namespace {

using roundhouse::testing::TempDir;

bool Exists(const std::string& path) { return std::filesystem::exists(path); }

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A child process that takes a lock with `hold` (which returns true on success) and keeps it
// until this object is destroyed. POSIX locks belong to a process, so contention needs two.
class OtherProcess {
 public:
  explicit OtherProcess(const std::function<bool()>& hold) {
    int ready[2];
    int release[2];
    REQUIRE(pipe(ready) == 0);
    REQUIRE(pipe(release) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      close(ready[0]);
      close(release[1]);
      const char ok = hold() ? '1' : '0';
      if (write(ready[1], &ok, 1) != 1) _exit(2);
      char c;
      (void)!read(release[0], &c, 1);
      _exit(0);
    }
    close(ready[1]);
    close(release[0]);
    release_ = release[1];
    char ok = 0;
    REQUIRE(read(ready[0], &ok, 1) == 1);
    close(ready[0]);
    held = ok == '1';
  }
  ~OtherProcess() {
    close(release_);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  OtherProcess(const OtherProcess&) = delete;
  OtherProcess& operator=(const OtherProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool held = false;

 private:
  pid_t pid_ = -1;
  int release_ = -1;
};

// In the child: takes the database lock and keeps it (the object lives until _exit).
std::function<bool()> HoldLock(const std::string& db) {
  return [db] {
    static Result<DatabaseLock> lock = DatabaseLock::Acquire(db);
    return lock.ok();
  };
}

// In the child: a read lock on "<db>-shm", as every SQLite WAL connection holds.
std::function<bool()> HoldShm(const std::string& db) {
  return [db] {
    const int fd = open((db + "-shm").c_str(), O_RDWR | O_CREAT, 0600);
    struct flock fl{};
    fl.l_type = F_RDLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 120;
    fl.l_len = 1;
    return fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0;
  };
}

TEST_CASE("the default database name carries the port", "[queue_file]") {
  CHECK(DefaultDatabaseName(4730) == "roundhouse-4730.db");
  CHECK(DefaultDatabaseName(0) == "roundhouse-0.db");
}

TEST_CASE("a database lock writes the owner's pid beside the database", "[queue_file]") {
  TempDir dir;
  const std::string db = dir.File("q.db");
  auto lock = DatabaseLock::Acquire(db);
  REQUIRE(lock.ok());
  CHECK(lock.value().held());
  CHECK(lock.value().lock_path() == std::filesystem::canonical(dir.path()).string() +
                                        "/q.db.lock");
  CHECK(Slurp(db + ".lock") == std::to_string(getpid()) + "\n");
  struct stat st{};
  REQUIRE(stat((db + ".lock").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK_FALSE(Exists(db));  // the database itself is left to SQLite
}

TEST_CASE("a second process cannot lock a held database; the refusal names file and pid",
          "[queue_file]") {
  TempDir dir;
  const std::string db = dir.File("q.db");
  {
    OtherProcess holder(HoldLock(db));
    REQUIRE(holder.held);
    auto second = DatabaseLock::Acquire(db);
    REQUIRE_FALSE(second.ok());
    const std::string msg = second.status().message();
    CHECK(msg.find("database " + db + " is in use by another server") != std::string::npos);
    CHECK(msg.find("pid " + std::to_string(holder.pid())) != std::string::npos);
    CHECK(msg.find("--libsqlite3-db") != std::string::npos);

    // Another spelling of the same file, and a symbolic link to it, meet the same lock.
    std::ofstream(db) << "";
    REQUIRE(symlink(db.c_str(), dir.File("link.db").c_str()) == 0);
    CHECK_FALSE(DatabaseLock::Acquire(dir.path() + "/./q.db").ok());
    CHECK_FALSE(DatabaseLock::Acquire(dir.File("link.db")).ok());
  }
  // The holder is gone (its exit dropped the lock): the file is free again.
  CHECK(DatabaseLock::Acquire(db).ok());
}

TEST_CASE("a lock file that cannot be created is a clear error", "[queue_file]") {
  auto lock = DatabaseLock::Acquire("/nonexistent-roundhouse-dir/q.db");
  REQUIRE_FALSE(lock.ok());
  CHECK(lock.status().message().find("cannot create the lock file") != std::string::npos);
  CHECK(lock.status().message().find("/nonexistent-roundhouse-dir/q.db") != std::string::npos);
}

TEST_CASE("a configured database is used as given, never adopted from the old default",
          "[queue_file]") {
  TempDir dir;
  dir.Write("roundhouse.db", "old");
  auto claimed = ClaimQueueFile(dir.File("mine.db"), 4730, dir.path());
  REQUIRE(claimed.ok());
  CHECK(claimed.value().path == dir.File("mine.db"));
  CHECK(Exists(dir.File("roundhouse.db")));
}

TEST_CASE("servers on different ports get different default databases", "[queue_file]") {
  TempDir dir;
  auto a = ClaimQueueFile("", 4730, dir.path());
  auto b = ClaimQueueFile("", 4731, dir.path());
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a.value().path == dir.File("roundhouse-4730.db"));
  CHECK(b.value().path == dir.File("roundhouse-4731.db"));
}

TEST_CASE("the old default ./roundhouse.db is renamed, WAL first, to the port's name",
          "[queue_file]") {
  TempDir dir;
  dir.Write("roundhouse.db", "main");
  dir.Write("roundhouse.db-wal", "wal");
  auto claimed = ClaimQueueFile("", 4730, dir.path());
  REQUIRE(claimed.ok());
  const std::string mine = dir.File("roundhouse-4730.db");
  CHECK(claimed.value().path == mine);
  CHECK(Slurp(mine) == "main");
  CHECK(Slurp(mine + "-wal") == "wal");
  CHECK_FALSE(Exists(dir.File("roundhouse.db")));
  CHECK_FALSE(Exists(dir.File("roundhouse.db-wal")));

  // A second default-named server on another port starts with a file of its own.
  auto other = ClaimQueueFile("", 4731, dir.path());
  REQUIRE(other.ok());
  CHECK(other.value().path == dir.File("roundhouse-4731.db"));
  CHECK_FALSE(Exists(dir.File("roundhouse-4731.db")));
}

TEST_CASE("a rename cut short after the WAL moved is finished by the next start",
          "[queue_file]") {
  TempDir dir;
  dir.Write("roundhouse.db", "main");
  dir.Write("roundhouse-4730.db-wal", "wal");  // moved before the crash
  auto claimed = ClaimQueueFile("", 4730, dir.path());
  REQUIRE(claimed.ok());
  CHECK(Slurp(dir.File("roundhouse-4730.db")) == "main");
  CHECK(Slurp(dir.File("roundhouse-4730.db-wal")) == "wal");
}

TEST_CASE("the old default is not adopted when the port's own file exists", "[queue_file]") {
  TempDir dir;
  dir.Write("roundhouse.db", "old");
  dir.Write("roundhouse-4730.db", "own");
  auto claimed = ClaimQueueFile("", 4730, dir.path());
  REQUIRE(claimed.ok());
  CHECK(Slurp(dir.File("roundhouse-4730.db")) == "own");
  CHECK(Slurp(dir.File("roundhouse.db")) == "old");
}

TEST_CASE("the old default is not adopted while another server holds it", "[queue_file]") {
  TempDir dir;
  dir.Write("roundhouse.db", "old");
  OtherProcess holder(HoldLock(dir.File("roundhouse.db")));
  REQUIRE(holder.held);
  auto claimed = ClaimQueueFile("", 4731, dir.path());
  REQUIRE(claimed.ok());
  CHECK(claimed.value().path == dir.File("roundhouse-4731.db"));
  CHECK(Slurp(dir.File("roundhouse.db")) == "old");
}

TEST_CASE("the old default is not adopted while a process has it open in SQLite",
          "[queue_file]") {
  TempDir dir;
  dir.Write("roundhouse.db", "old");
  OtherProcess user(HoldShm(dir.File("roundhouse.db")));
  REQUIRE(user.held);
  auto claimed = ClaimQueueFile("", 4730, dir.path());
  REQUIRE(claimed.ok());
  CHECK(Slurp(dir.File("roundhouse.db")) == "old");
  CHECK_FALSE(Exists(dir.File("roundhouse-4730.db")));
}

TEST_CASE("a default-named server whose own file is held refuses to start", "[queue_file]") {
  TempDir dir;
  OtherProcess holder(HoldLock(dir.File("roundhouse-4730.db")));
  REQUIRE(holder.held);
  auto claimed = ClaimQueueFile("", 4730, dir.path());
  REQUIRE_FALSE(claimed.ok());
  CHECK(claimed.status().message().find("roundhouse-4730.db is in use by another server (pid " +
                                        std::to_string(holder.pid())) != std::string::npos);
}

}  // namespace
}  // namespace roundhouse::server
