// Which SQLite file a server keeps its durable queue in, and the server's exclusive ownership of
// it (doc/protocol.md §5.1 `--libsqlite3-db`, §6.4).
//
// One server per database file: two servers writing one file would delete and replay each
// other's jobs. Ownership is a POSIX write lock (fcntl F_SETLK) on "<database>.lock" beside the
// database, held through one descriptor for the life of the DatabaseLock. The kernel drops it
// when the process dies, however it dies, so there is no stale lock to clean up; the lock file
// itself stays (deleting it would let two servers lock two different inodes). The file also
// holds the owner's pid as text, for people; the refusal message takes the pid from F_GETLK.
//
// Default name: without --libsqlite3-db the database is "roundhouse-<port>.db" in the working
// directory, so servers started from one directory on different ports each have their own.
// Before that, the default was "roundhouse.db"; ClaimQueueFile renames such a file (with its
// WAL) to the new name the first time a default-named server starts and finds no file of its
// own, unless another process has the old file open.
//
// Thread-safety: call on one thread at start-up (before the store's writer thread exists).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace roundhouse::server {

inline constexpr std::string_view kLegacyDatabaseName = "roundhouse.db";

// "roundhouse-<port>.db".
std::string DefaultDatabaseName(uint16_t port);

class DatabaseLock {
 public:
  DatabaseLock() = default;
  ~DatabaseLock();
  DatabaseLock(DatabaseLock&& other) noexcept;
  DatabaseLock& operator=(DatabaseLock&& other) noexcept;
  DatabaseLock(const DatabaseLock&) = delete;
  DatabaseLock& operator=(const DatabaseLock&) = delete;

  // Locks "<db_path>.lock" (db_path made absolute, symbolic links resolved when the database
  // exists, so two spellings of one file share one lock). Fails with a message naming the
  // database and the holder's pid when another process holds it, or naming the error when the
  // lock file cannot be created.
  static Result<DatabaseLock> Acquire(const std::string& db_path);

  bool held() const { return fd_ >= 0; }
  const std::string& lock_path() const { return lock_path_; }

 private:
  int fd_ = -1;  // owns the descriptor that carries the lock; -1 when not held
  std::string lock_path_;
};

struct QueueFile {
  std::string path;   // the database the store opens
  DatabaseLock lock;  // held for as long as the server runs
};

// `configured` is --libsqlite3-db, or empty for the default name for `port`. Resolves the file
// (the legacy rename above, logged at NOTICE) and takes its lock. `dir` is where default names
// live (the working directory: "").
Result<QueueFile> ClaimQueueFile(const std::string& configured, uint16_t port,
                                 const std::string& dir = "");

}  // namespace roundhouse::server
