// Helpers for the storage tests: a temporary directory, a libuv loop that must end with every
// handle closed, raw SQLite access to inspect or prepare a file, and record builders.
#pragma once

#include <sqlite3.h>
#include <stdlib.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "storage/job_store.h"
#include "storage/sqlite_store.h"

namespace roundhouse::storage::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/rh-storage-XXXXXX";
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A loop for one test. The destructor runs it until every handle is closed and checks that
// uv_loop_close succeeds (a leaked handle fails the test).
class Loop {
 public:
  Loop() { REQUIRE(uv_loop_init(&loop_) == 0); }
  ~Loop() {
    uv_run(&loop_, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop_) == 0);
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  uv_loop_t* get() { return &loop_; }
  // Runs until nothing keeps the loop alive (the store only does while a callback is owed).
  void Run() { uv_run(&loop_, UV_RUN_DEFAULT); }
  // One iteration without blocking: hands what was queued to the store's writer.
  void RunOnce() { uv_run(&loop_, UV_RUN_NOWAIT); }

 private:
  uv_loop_t loop_;
};

// A plain connection for preparing and inspecting files behind the store's back.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
    sqlite3_busy_timeout(db_, 6000);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  sqlite3* get() { return db_; }

  void Exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    INFO(sql << ": " << (err != nullptr ? err : ""));
    sqlite3_free(err);
    REQUIRE(rc == SQLITE_OK);
  }
  // The first column of the first row as an integer (0 if no row).
  int64_t Int(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    const int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return v;
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    std::string v;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr) {
      v = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline JobRecord Record(uint64_t id, std::string function, std::string data,
                        std::string unique = "", uint8_t priority = 1, int64_t when = 0,
                        std::string reducer = "") {
  JobRecord r;
  r.id = id;
  r.handle = "H:test:" + std::to_string(id);
  r.function = std::move(function);
  r.unique = std::move(unique);
  r.reducer = std::move(reducer);
  r.data = std::move(data);
  r.priority = priority;
  r.when = when;
  return r;
}

inline bool SameRecord(const JobRecord& a, const JobRecord& b) {
  return a.id == b.id && a.handle == b.handle && a.function == b.function && a.unique == b.unique &&
         a.reducer == b.reducer && a.data == b.data && a.priority == b.priority && a.when == b.when;
}

// Every record a Replay() hands out, in order.
inline std::vector<JobRecord> ReplayAll(JobStore& store, ReplayInfo* info = nullptr,
                                        const ReplayOptions& options = {}) {
  std::vector<JobRecord> out;
  auto result = store.Replay(options, [&](JobRecord&& rec) { out.push_back(std::move(rec)); });
  INFO(result.status().message());
  REQUIRE(result.ok());
  if (info != nullptr) *info = result.value();
  return out;
}

inline std::unique_ptr<SqliteStore> OpenStore(Loop& loop, const std::string& path,
                                              uint32_t max_page_count = 0) {
  SqliteOptions options;
  options.path = path;
  options.max_page_count = max_page_count;
  auto store = SqliteStore::Open(loop.get(), options);
  INFO(store.status().message());
  REQUIRE(store.ok());
  return std::move(store).value();
}

// The ids of the jobs stored in `path`, in replay order, as "1,2,5": what a restart would bring
// back, whichever table holds them (segments or roundhouse_jobs rows). Imports nothing.
inline std::string StoredIds(const std::string& path) {
  Loop loop;
  SqliteOptions options;
  options.path = path;
  options.import_table.clear();
  auto store = SqliteStore::Open(loop.get(), options);
  INFO(store.status().message());
  REQUIRE(store.ok());
  std::string ids;
  auto replayed = store.value()->Replay(
      [&](JobRecord&& rec) { ids += (ids.empty() ? "" : ",") + std::to_string(rec.id); });
  INFO(replayed.status().message());
  REQUIRE(replayed.ok());
  store.value()->Close();
  return ids;
}

// Adds `rec` and records the Status its callback receives.
struct Outcome {
  bool called = false;
  Status status;
};
inline void AddAndRecord(JobStore& store, JobRecord rec, Outcome* outcome) {
  store.Add(std::move(rec), [outcome](const Status& s) {
    outcome->called = true;
    outcome->status = s;
  });
}

}  // namespace roundhouse::storage::testing
