// Opening files: new, ours, gearmand's, foreign, newer, unopenable.
#include "storage/sqlite_schema.h"

#include <filesystem>

#include "storage/sqlite_store.h"
#include "test/unit/storage/storage_test_util.h"

namespace roundhouse::storage {
namespace {

using testing::Loop;
using testing::OpenStore;
using testing::RawDb;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

Result<std::unique_ptr<SqliteStore>> TryOpen(Loop& loop, const std::string& path) {
  SqliteOptions options;
  options.path = path;
  return SqliteStore::Open(loop.get(), options);
}

TEST_CASE("store creates a missing file with the current schema in WAL mode", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("new.db");
  {
    Loop loop;
    auto store = OpenStore(loop, path);
  }
  RawDb raw(path);
  CHECK(raw.Text("PRAGMA journal_mode") == "wal");
  CHECK(raw.Int("SELECT value FROM roundhouse_meta WHERE key = 'schema_version'") ==
        kSchemaVersion);
  CHECK(raw.Int("SELECT count(*) FROM sqlite_master WHERE name = 'roundhouse_jobs'") == 1);
  CHECK(raw.Int("SELECT count(*) FROM roundhouse_jobs") == 0);
}

TEST_CASE("store reopens its own file without migrating again", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  for (int i = 0; i < 3; ++i) {
    Loop loop;
    auto store = OpenStore(loop, path);
    store->Add(testing::Record(static_cast<uint64_t>(i) + 1, "fn", "x"),
               [](const Status& s) { CHECK(s.ok()); });
    loop.Run();
  }
  CHECK(testing::StoredIds(path) == "1,2,3");
}

TEST_CASE("store adds its tables beside a gearmand table and leaves that table", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("gearmand.db");
  {
    RawDb raw(path);
    raw.Exec(
        "CREATE TABLE gearman_queue ( unique_key TEXT, function_name TEXT, priority INTEGER, "
        "data BLOB, when_to_run INTEGER, PRIMARY KEY (unique_key, function_name))");
    raw.Exec("INSERT INTO gearman_queue VALUES('u', 'fn', 1, x'00', 0)");
  }
  {
    Loop loop;
    auto store = OpenStore(loop, path);  // Open does not import; Replay does
  }
  RawDb raw(path);
  CHECK(raw.Int("SELECT count(*) FROM gearman_queue") == 1);
  CHECK(raw.Int("SELECT value FROM roundhouse_meta WHERE key = 'schema_version'") ==
        kSchemaVersion);
}

TEST_CASE("store refuses a file with a newer schema version and leaves it unchanged", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("future.db");
  {
    RawDb raw(path);
    raw.Exec("CREATE TABLE roundhouse_meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER)");
    raw.Exec("INSERT INTO roundhouse_meta VALUES('schema_version', " +
             std::to_string(kSchemaVersion + 1) + ")");
  }
  const std::string before = ReadFile(path);
  Loop loop;
  auto store = TryOpen(loop, path);
  REQUIRE_FALSE(store.ok());
  CHECK_THAT(store.status().message(), Catch::Contains("newer"));
  CHECK_THAT(store.status().message(), Catch::Contains(path));
  CHECK(ReadFile(path) == before);  // still in rollback-journal mode, no table added
  CHECK_FALSE(std::filesystem::exists(path + "-wal"));
}

TEST_CASE("store refuses a file that is not a database and leaves it unchanged", "[storage]") {
  TempDir dir;
  for (const std::string& content :
       {std::string("hello"), std::string(8192, 'g'),
        std::string("SQLite format 3\0", 16) + std::string(200, '\x07')}) {
    const std::string path = dir.File("notdb");
    WriteFile(path, content);
    Loop loop;
    auto store = TryOpen(loop, path);
    REQUIRE_FALSE(store.ok());
    CHECK_THAT(store.status().message(), Catch::Contains("not a usable SQLite database"));
    CHECK(ReadFile(path) == content);
    CHECK_FALSE(std::filesystem::exists(path + "-wal"));
    CHECK_FALSE(std::filesystem::exists(path + "-journal"));
  }
}

TEST_CASE("store reports a path that cannot be opened", "[storage]") {
  TempDir dir;
  Loop loop;
  auto in_missing_dir = TryOpen(loop, dir.File("no/such/dir/q.db"));
  REQUIRE_FALSE(in_missing_dir.ok());
  CHECK_THAT(in_missing_dir.status().message(), Catch::Contains("cannot open"));
  auto a_directory = TryOpen(loop, dir.File(""));
  REQUIRE_FALSE(a_directory.ok());
}

}  // namespace
}  // namespace roundhouse::storage
