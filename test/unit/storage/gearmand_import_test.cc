// Import of a gearmand libsqlite3 table at Replay (doc/protocol.md §6.4).
#include "storage/gearmand_import.h"

#include <cstdlib>

#include "storage/sqlite_store.h"
#include "test/unit/storage/storage_test_util.h"

namespace roundhouse::storage {
namespace {

using testing::Loop;
using testing::OpenStore;
using testing::RawDb;
using testing::Record;
using testing::ReplayAll;
using testing::SameRecord;
using testing::TempDir;

// gearmand 1.1.20's DDL, as it creates the table.
constexpr char kGearmandTable[] =
    "CREATE TABLE gearman_queue ( unique_key TEXT, function_name TEXT, priority INTEGER, "
    "data BLOB, when_to_run INTEGER, PRIMARY KEY (unique_key, function_name))";

ReplayOptions Import(uint64_t first_id) {
  ReplayOptions o;
  o.first_import_id = first_id;
  o.handle_prefix = "H:imp";
  return o;
}

TEST_CASE("import turns each gearmand row into a job and empties the table", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("gearmand.db");
  {
    RawDb raw(path);
    raw.Exec(kGearmandTable);
    raw.Exec("INSERT INTO gearman_queue VALUES('uuid-1', 'resize', 1, x'00ff0041', 0)");
    raw.Exec("INSERT INTO gearman_queue VALUES('', 'resize', 0, 'text data', NULL)");
    raw.Exec("INSERT INTO gearman_queue VALUES('k', 'mail', 7, x'', 1700000000)");
    raw.Exec("INSERT INTO gearman_queue VALUES(x'6b00', x'6d61696c', -1, x'01', 0)");
    raw.Exec("INSERT INTO gearman_queue VALUES('low', 'mail', 2, 'z', 'soon')");
  }
  Loop loop;
  auto store = OpenStore(loop, path);
  ReplayInfo info;
  auto jobs = ReplayAll(*store, &info, Import(1000));
  REQUIRE(jobs.size() == 5);
  JobRecord first = Record(1000, "resize", std::string("\0\xff\0A", 4), "uuid-1", 1);
  first.handle = "H:imp:1000";
  CHECK(SameRecord(jobs[0], first));   // BLOB data with NULs
  CHECK(jobs[1].data == "text data");  // TEXT data accepted
  CHECK(jobs[1].unique.empty());
  CHECK(jobs[1].priority == 0);
  CHECK(jobs[1].when == 0);      // NULL when_to_run
  CHECK(jobs[2].priority == 1);  // 7 is out of range
  CHECK(jobs[2].when == 1700000000);
  CHECK(jobs[2].data.empty());
  CHECK(jobs[3].unique == std::string("k\0", 2));  // BLOB unique accepted
  CHECK(jobs[3].function == "mail");
  CHECK(jobs[3].priority == 1);  // -1 is out of range
  CHECK(jobs[4].priority == 2);
  CHECK(jobs[4].when == 0);  // not a number
  for (size_t i = 0; i < jobs.size(); ++i) {
    CHECK(jobs[i].id == 1000 + i);
    CHECK(jobs[i].handle == "H:imp:" + std::to_string(1000 + i));
    CHECK(jobs[i].reducer.empty());
  }
  CHECK(info.imported == 5);
  CHECK(info.jobs == 5);
  CHECK(info.handle_ceiling == 1005);

  RawDb raw(path);
  CHECK(raw.Int("SELECT count(*) FROM gearman_queue") == 0);
  CHECK(raw.Int("SELECT value FROM roundhouse_meta WHERE key = 'handle_ceiling'") == 1005);

  // The next start replays the same jobs with the same handles and imports nothing.
  ReplayInfo again;
  auto second = ReplayAll(*store, &again, Import(5000));
  REQUIRE(second.size() == 5);
  for (size_t i = 0; i < 5; ++i) CHECK(SameRecord(second[i], jobs[i]));
  CHECK(again.imported == 0);
}

TEST_CASE("import gives ids above every stored id and the persisted ceiling", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  Loop loop;
  auto store = OpenStore(loop, path);
  store->Add(Record(50, "ours", "x"), [](const Status& s) { CHECK(s.ok()); });
  store->SetHandleCeiling(64);
  loop.Run();
  {
    RawDb raw(path);
    raw.Exec(kGearmandTable);
    raw.Exec("INSERT INTO gearman_queue VALUES('a', 'theirs', 1, 'one', 0)");
    raw.Exec("INSERT INTO gearman_queue VALUES('b', 'theirs', 1, 'two', 0)");
  }
  ReplayInfo info;
  auto jobs = ReplayAll(*store, &info, Import(0));
  REQUIRE(jobs.size() == 3);
  CHECK(jobs[0].id == 50);
  CHECK(jobs[1].id == 64);
  CHECK(jobs[2].id == 65);
  CHECK(jobs[1].data == "one");
  CHECK(info.handle_ceiling == 66);
}

TEST_CASE("import keeps gearmand's row order", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    RawDb raw(path);
    raw.Exec(kGearmandTable);
    // Primary-key order (unique_key) differs from insertion order.
    for (const char* u : {"zz", "aa", "mm", "bb"}) {
      raw.Exec(std::string("INSERT INTO gearman_queue VALUES('") + u + "', 'fn', 1, '" + u +
               "', 0)");
    }
  }
  Loop loop;
  auto store = OpenStore(loop, path);
  auto jobs = ReplayAll(*store, nullptr, Import(1));
  REQUIRE(jobs.size() == 4);
  CHECK(jobs[0].unique == "zz");
  CHECK(jobs[1].unique == "aa");
  CHECK(jobs[2].unique == "mm");
  CHECK(jobs[3].unique == "bb");
}

TEST_CASE("import of an old gearmand table without when_to_run uses 0", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    RawDb raw(path);
    raw.Exec(
        "CREATE TABLE gearman_queue ( unique_key TEXT, function_name TEXT, "
        "priority INTEGER, data BLOB, PRIMARY KEY (unique_key, function_name))");
    raw.Exec("INSERT INTO gearman_queue VALUES('u', 'fn', 2, 'd')");
  }
  Loop loop;
  auto store = OpenStore(loop, path);
  auto jobs = ReplayAll(*store, nullptr, Import(1));
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].when == 0);
  CHECK(jobs[0].priority == 2);
}

TEST_CASE("import is all or nothing: a failure leaves the gearmand rows and no jobs", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    RawDb raw(path);
    raw.Exec(kGearmandTable);
    // ~300 KB of rows: the copy needs far more than the 20 spare pages allowed below.
    raw.Exec("BEGIN");
    for (int i = 0; i < 150; ++i) {
      raw.Exec("INSERT INTO gearman_queue VALUES('u" + std::to_string(i) +
               "', 'fn', 1, zeroblob(2000), 0)");
    }
    raw.Exec("COMMIT");
  }
  const int64_t pages_before = RawDb(path).Int("PRAGMA page_count");
  {
    Loop loop;
    auto store = OpenStore(loop, path, static_cast<uint32_t>(pages_before + 20));
    std::vector<JobRecord> jobs;
    auto result = store->Replay(Import(1), [&](JobRecord&& r) { jobs.push_back(std::move(r)); });
    REQUIRE_FALSE(result.ok());
    CHECK_THAT(result.status().message(), Catch::Contains("import of gearmand table"));
    CHECK(jobs.empty());
    RawDb raw(path);
    CHECK(raw.Int("SELECT count(*) FROM gearman_queue") == 150);
    CHECK(raw.Int("SELECT count(*) FROM roundhouse_jobs") == 0);
    CHECK(raw.Int("SELECT count(*) FROM roundhouse_meta WHERE key = 'handle_ceiling'") == 0);
  }
  // With room, the same file imports completely; both tables change in one commit.
  Loop loop;
  auto store = OpenStore(loop, path);
  ReplayInfo info;
  auto jobs = ReplayAll(*store, &info, Import(1));
  CHECK(jobs.size() == 150);
  CHECK(info.imported == 150);
  RawDb raw(path);
  CHECK(raw.Int("SELECT count(*) FROM gearman_queue") == 0);
  CHECK(raw.Int("SELECT count(*) FROM roundhouse_jobs") == 150);
}

TEST_CASE("import refuses a table that is not a gearmand queue and changes nothing", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    RawDb raw(path);
    raw.Exec("CREATE TABLE gearman_queue (a TEXT, b TEXT)");
    raw.Exec("INSERT INTO gearman_queue VALUES('x', 'y')");
  }
  Loop loop;
  auto store = OpenStore(loop, path);
  auto result = store->Replay(Import(1), [](JobRecord&&) { FAIL("no job expected"); });
  REQUIRE_FALSE(result.ok());
  CHECK_THAT(result.status().message(), Catch::Contains("not a gearmand libsqlite3 queue"));
  CHECK(RawDb(path).Int("SELECT count(*) FROM gearman_queue") == 1);
}

TEST_CASE("import is skipped when the table is absent, empty, or not configured", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  Loop loop;
  {
    auto store = OpenStore(loop, path);
    ReplayInfo info;
    CHECK(ReplayAll(*store, &info, Import(1)).empty());
    CHECK(info.imported == 0);
    RawDb(path).Exec(kGearmandTable);
    CHECK(ReplayAll(*store, &info, Import(1)).empty());
    CHECK(info.handle_ceiling == 0);
  }
  RawDb(path).Exec("INSERT INTO gearman_queue VALUES('u', 'fn', 1, 'd', 0)");
  SqliteOptions options;
  options.path = path;
  options.import_table = "";
  auto store = SqliteStore::Open(loop.get(), options);
  REQUIRE(store.ok());
  CHECK(ReplayAll(*store.value(), nullptr, Import(1)).empty());
  CHECK(RawDb(path).Int("SELECT count(*) FROM gearman_queue") == 1);
}

TEST_CASE("import reads the configured table name, quoted", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    RawDb raw(path);
    raw.Exec(
        "CREATE TABLE \"my \"\"queue\" ( unique_key TEXT, function_name TEXT, "
        "priority INTEGER, data BLOB, when_to_run INTEGER)");
    raw.Exec("INSERT INTO \"my \"\"queue\" VALUES('u', 'fn', 0, 'd', 0)");
  }
  Loop loop;
  SqliteOptions options;
  options.path = path;
  options.import_table = "my \"queue";
  auto store = SqliteStore::Open(loop.get(), options);
  REQUIRE(store.ok());
  auto jobs = ReplayAll(*store.value(), nullptr, Import(1));
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].priority == 0);

  options.import_table = "roundhouse_jobs";
  auto clash = SqliteStore::Open(loop.get(), options);
  REQUIRE(clash.ok());
  auto result = clash.value()->Replay(Import(1), [](JobRecord&&) {});
  REQUIRE_FALSE(result.ok());
  CHECK_THAT(result.status().message(), Catch::Contains("roundhouse's own tables"));
}

TEST_CASE("import without a handle prefix uses H:<nodename>", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    RawDb raw(path);
    raw.Exec(kGearmandTable);
    raw.Exec("INSERT INTO gearman_queue VALUES('u', 'fn', 1, 'd', 0)");
  }
  Loop loop;
  auto store = OpenStore(loop, path);
  ReplayOptions options;
  options.first_import_id = 77;
  auto jobs = ReplayAll(*store, nullptr, options);
  REQUIRE(jobs.size() == 1);
  CHECK_THAT(jobs[0].handle, Catch::StartsWith("H:") && Catch::EndsWith(":77"));
  CHECK(jobs[0].handle.size() <= 63);
}

// Run by gearmand_import_test.sh after real gearmand 1.1.20 filled the file named by
// $ROUNDHOUSE_GEARMAND_DB with the submissions listed there.
TEST_CASE("import reads a queue written by real gearmand", "[.gearmand-import]") {
  const char* path = std::getenv("ROUNDHOUSE_GEARMAND_DB");
  REQUIRE(path != nullptr);
  const int64_t rows = RawDb(path).Int("SELECT count(*) FROM gearman_queue");
  Loop loop;
  auto store = OpenStore(loop, path);
  ReplayInfo info;
  auto jobs = ReplayAll(*store, &info, Import(1'000'000));
  struct Expect {
    const char* function;
    std::string data;
    uint8_t priority;
    const char* unique;  // nullptr: a UUID libgearman made up
  };
  const std::vector<Expect> expected = {
      {"rh_import_a", "normal-1", 1, nullptr},
      {"rh_import_a", "high-1", 0, nullptr},
      {"rh_import_b", "low-1", 2, nullptr},
      {"rh_import_a", "first", 1, "dup"},  // the second submit with unique "dup" coalesced
      {"rh_import_a", "normal-2", 1, nullptr},
      {"rh_import_b", std::string("bin\0ary\n", 8), 1, nullptr},
  };
  CHECK(rows == static_cast<int64_t>(expected.size()));
  REQUIRE(jobs.size() == expected.size());
  CHECK(info.imported == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("job " << i);
    CHECK(jobs[i].id == 1'000'000 + i);
    CHECK(jobs[i].function == expected[i].function);
    CHECK(jobs[i].data == expected[i].data);
    CHECK(jobs[i].priority == expected[i].priority);
    CHECK(jobs[i].when == 0);
    if (expected[i].unique != nullptr) {
      CHECK(jobs[i].unique == expected[i].unique);
    } else {
      CHECK(jobs[i].unique.size() == 36);
    }
  }
  CHECK(RawDb(path).Int("SELECT count(*) FROM gearman_queue") == 0);
  ReplayInfo again;
  CHECK(ReplayAll(*store, &again, Import(1)).size() == expected.size());
  CHECK(again.imported == 0);
}

}  // namespace
}  // namespace roundhouse::storage
