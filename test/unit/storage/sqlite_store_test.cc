// SqliteStore: durable adds, removes, the handle ceiling, replay order, callbacks, failures.
#include "storage/sqlite_store.h"

#include <chrono>
#include <thread>

#include "storage/sqlite_schema.h"
#include "test/unit/storage/storage_test_util.h"

namespace roundhouse::storage {
namespace {

using testing::AddAndRecord;
using testing::Loop;
using testing::OpenStore;
using testing::Outcome;
using testing::RawDb;
using testing::Record;
using testing::ReplayAll;
using testing::SameRecord;
using testing::TempDir;

TEST_CASE("store round-trips every field of a record through a restart", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  const std::string binary("a\0b\0\xff\x01", 6);
  const std::vector<JobRecord> records = {
      Record(7, "fn", "plain"),
      Record(8, "fn", binary, "uniq-1", 0),
      Record(9, std::string("f\0n", 3), "", "", 2),
      Record(10, "epoch", "later", "e", 1, 1'900'000'000),
      Record(11, "mapper", "input", "r1", 1, 0, "reducer-fn"),
  };
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    std::vector<Outcome> outcomes(records.size());
    for (size_t i = 0; i < records.size(); ++i) AddAndRecord(*store, records[i], &outcomes[i]);
    loop.Run();
    for (const Outcome& o : outcomes) {
      CHECK(o.called);
      CHECK(o.status.ok());
    }
    store->Close();
  }
  Loop loop;
  auto store = OpenStore(loop, path);
  ReplayInfo info;
  auto replayed = ReplayAll(*store, &info);
  REQUIRE(replayed.size() == records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    INFO("record " << i);
    CHECK(SameRecord(replayed[i], records[i]));
  }
  CHECK(info.jobs == records.size());
  CHECK(info.imported == 0);
  CHECK(info.handle_ceiling == 12);
}

TEST_CASE("store keeps jenkins masters and journal entries across a restart", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    CHECK(store->durable());
    store->PutMaster("ci1", "base_url=http://a/\nuser=u\n");
    store->PutMaster("ci2", "base_url=http://b/\n");
    store->PutMaster("ci2", "base_url=http://c/\n");  // replaces
    store->PutMaster("gone", "x=y\n");
    store->DeleteMaster("gone");
    Status acked = Status::Error("not called");
    bool called = false;
    store->PutJournal("ci1", "H:a:1", "{\"state\":\"TRIGGERING\"}", [&](Status s) {
      called = true;
      acked = s;
    });
    CHECK_FALSE(called);  // never synchronously
    store->PutJournal("ci1", "H:a:1", "{\"state\":\"QUEUED\"}", {});
    store->PutJournal("ci1", "H:a:2", "{}", {});
    store->DeleteJournal("ci1", "H:a:2");
    store->DeleteJournal("ci1", "H:never:9");  // idempotent
    loop.Run();
    CHECK(called);
    CHECK(acked.ok());
    store->Close();
  }
  Loop loop;
  auto store = OpenStore(loop, path);
  auto masters = store->LoadMasters();
  REQUIRE(masters.ok());
  REQUIRE(masters.value().size() == 2);
  CHECK(masters.value()[0] ==
        std::pair<std::string, std::string>("ci1", "base_url=http://a/\nuser=u\n"));
  CHECK(masters.value()[1] == std::pair<std::string, std::string>("ci2", "base_url=http://c/\n"));
  auto journal = store->LoadJournal();
  REQUIRE(journal.ok());
  REQUIRE(journal.value().size() == 1);
  CHECK(journal.value()[0].master == "ci1");
  CHECK(journal.value()[0].handle == "H:a:1");
  CHECK(journal.value()[0].entry == "{\"state\":\"QUEUED\"}");
}

TEST_CASE("store keeps four jobs of one function with empty uniques as four rows", "[storage]") {
  TempDir dir;
  Loop loop;
  auto store = OpenStore(loop, dir.File("q.db"));
  for (uint64_t id = 1; id <= 4; ++id) {
    store->Add(Record(id, "same", "payload"), [](const Status& s) { CHECK(s.ok()); });
  }
  loop.Run();
  auto replayed = ReplayAll(*store);
  REQUIRE(replayed.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CHECK(replayed[i].id == i + 1);
    CHECK(replayed[i].unique.empty());
  }
}

TEST_CASE("store replays in id order, which keeps FIFO order within each priority", "[storage]") {
  TempDir dir;
  Loop loop;
  auto store = OpenStore(loop, dir.File("q.db"));
  // Interleaved priorities and functions, submitted in id order over several commits.
  std::vector<JobRecord> submitted;
  for (uint64_t id = 100; id < 160; ++id) {
    submitted.push_back(Record(id, id % 2 ? "odd" : "even", "d" + std::to_string(id), "",
                               static_cast<uint8_t>(id % 3)));
    store->Add(submitted.back(), [](const Status& s) { CHECK(s.ok()); });
    if (id % 7 == 0) loop.Run();
  }
  loop.Run();
  auto replayed = ReplayAll(*store);
  REQUIRE(replayed.size() == submitted.size());
  for (size_t i = 0; i < submitted.size(); ++i) CHECK(replayed[i].id == submitted[i].id);
}

TEST_CASE("store forgets removed jobs and tolerates removing unknown ids", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    for (uint64_t id = 1; id <= 5; ++id) {
      store->Add(Record(id, "fn", "x"), [](const Status& s) { CHECK(s.ok()); });
    }
    loop.Run();
    store->Remove(2);
    store->Remove(4);
    store->Remove(4);
    store->Remove(999);
    store->Close();  // removes have no callback; Close commits them
  }
  Loop loop;
  auto store = OpenStore(loop, path);
  auto replayed = ReplayAll(*store);
  REQUIRE(replayed.size() == 3);
  CHECK(replayed[0].id == 1);
  CHECK(replayed[1].id == 3);
  CHECK(replayed[2].id == 5);
}

TEST_CASE("store acknowledges an add that is removed before it commits, and stores neither",
          "[storage]") {
  TempDir dir;
  Loop loop;
  auto store = OpenStore(loop, dir.File("q.db"));
  Outcome a, b;
  AddAndRecord(*store, Record(1, "fn", "x"), &a);
  store->Remove(1);
  AddAndRecord(*store, Record(2, "fn", "y"), &b);
  loop.Run();
  CHECK(a.called);
  CHECK(a.status.ok());
  CHECK(b.status.ok());
  auto replayed = ReplayAll(*store);
  REQUIRE(replayed.size() == 1);
  CHECK(replayed[0].id == 2);
}

TEST_CASE("store persists the handle ceiling and never lowers it", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    store->SetHandleCeiling(5000);
    store->SetHandleCeiling(3000);
    store->Close();
  }
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    ReplayInfo info;
    CHECK(ReplayAll(*store, &info).empty());
    CHECK(info.handle_ceiling == 5000);
    // A stored job above the ceiling lifts what Replay reports.
    store->Add(Record(7000, "fn", "x"), [](const Status& s) { CHECK(s.ok()); });
    loop.Run();
    ReplayAll(*store, &info);
    CHECK(info.handle_ceiling == 7001);
  }
  RawDb raw(path);
  CHECK(raw.Int("SELECT value FROM roundhouse_meta WHERE key = 'handle_ceiling'") == 5000);
}

TEST_CASE("store runs callbacks on the loop, in add order, never inside Add", "[storage]") {
  TempDir dir;
  Loop loop;
  auto store = OpenStore(loop, dir.File("q.db"));
  const auto loop_thread = std::this_thread::get_id();
  std::vector<uint64_t> order;
  bool inside_add = false;
  for (uint64_t id = 1; id <= 200; ++id) {
    inside_add = true;
    store->Add(Record(id, "fn", "x"), [&, id](const Status& s) {
      CHECK(s.ok());
      CHECK_FALSE(inside_add);
      CHECK(std::this_thread::get_id() == loop_thread);
      order.push_back(id);
    });
    inside_add = false;
  }
  CHECK(order.empty());
  loop.Run();
  REQUIRE(order.size() == 200);
  for (uint64_t i = 0; i < 200; ++i) CHECK(order[i] == i + 1);
}

TEST_CASE("store callbacks may add more jobs, and the loop ends once none is owed", "[storage]") {
  TempDir dir;
  Loop loop;
  auto store = OpenStore(loop, dir.File("q.db"));
  uint64_t next = 1;
  int completed = 0;
  std::function<void(const Status&)> chain = [&](const Status& s) {
    CHECK(s.ok());
    ++completed;
    if (next <= 50) store->Add(Record(next++, "fn", "x"), chain);
  };
  store->Add(Record(next++, "fn", "x"), chain);
  loop.Run();  // returns only when nothing is owed, without any timer or stop
  CHECK(completed == 50);
  CHECK(ReplayAll(*store).size() == 50);
}

TEST_CASE("store Close commits what is queued and runs the owed callbacks", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  int ok = 0;
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    for (uint64_t id = 1; id <= 100; ++id) {
      store->Add(Record(id, "fn", "x"), [&](const Status& s) { ok += s.ok(); });
    }
    store->Close();
    CHECK(ok == 100);
    store->Close();  // twice is fine
  }                  // the loop then frees the async handle; ~Loop checks nothing leaked
  std::string expected;
  for (int id = 1; id <= 100; ++id) expected += (id == 1 ? "" : ",") + std::to_string(id);
  CHECK(testing::StoredIds(path) == expected);
}

TEST_CASE("store may be closed from inside a done callback", "[storage]") {
  TempDir dir;
  Loop loop;
  auto store = OpenStore(loop, dir.File("q.db"));
  int calls = 0;
  store->Add(Record(1, "fn", "x"), [&](const Status& s) {
    CHECK(s.ok());
    ++calls;
    store->Close();
  });
  store->Add(Record(2, "fn", "y"), [&](const Status& s) {
    CHECK(s.ok());
    ++calls;
  });
  loop.Run();
  CHECK(calls == 2);
}

TEST_CASE("store commits everything queued in one loop iteration in one transaction", "[storage]") {
  TempDir dir;
  Loop loop;
  auto store = OpenStore(loop, dir.File("q.db"));
  for (uint64_t id = 1; id <= 50; ++id) {
    store->Add(Record(id, "fn", "x"), [](const Status& s) { CHECK(s.ok()); });
  }
  store->Remove(7);
  store->SetHandleCeiling(1000);
  loop.Run();
  CHECK(store->delivered_batches() == 1);
  CHECK(ReplayAll(*store).size() == 49);
}

// Holds the database's write lock from a second connection, so the store's writer waits in
// BEGIN IMMEDIATE (within its busy timeout) and later records pile up for the next commit.
class WriteLock {
 public:
  explicit WriteLock(const std::string& path) : raw_(path) { raw_.Exec("BEGIN IMMEDIATE"); }
  void Release() { raw_.Exec("ROLLBACK"); }

 private:
  RawDb raw_;
};

// Hands what is queued to the writer and gives it time to take it and block on the lock.
void LetWriterBlock(Loop& loop) {
  loop.RunOnce();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

TEST_CASE("store commits records queued during a commit together in the next one", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  Loop loop;
  auto store = OpenStore(loop, path);
  WriteLock lock(path);
  store->Add(Record(1, "fn", "first"), [](const Status& s) { CHECK(s.ok()); });
  LetWriterBlock(loop);
  for (uint64_t id = 2; id <= 101; ++id) {
    store->Add(Record(id, "fn", "x"), [](const Status& s) { CHECK(s.ok()); });
  }
  lock.Release();
  loop.Run();
  CHECK(store->delivered_batches() == 2);
  CHECK(ReplayAll(*store).size() == 101);
}

TEST_CASE("store fails every add of a batch that cannot commit and stores none of it",
          "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  Loop loop;
  // 40 pages of 4096 bytes: room for the schema and small jobs, not for a 1 MB payload.
  auto store = OpenStore(loop, path, 40);
  Outcome before;
  AddAndRecord(*store, Record(1, "fn", "small"), &before);
  loop.Run();
  REQUIRE(before.status.ok());

  WriteLock lock(path);
  Outcome blocker, big, small;
  AddAndRecord(*store, Record(2, "fn", "blocker"), &blocker);
  LetWriterBlock(loop);
  AddAndRecord(*store, Record(3, "fn", std::string(1 << 20, 'x')), &big);
  AddAndRecord(*store, Record(4, "fn", "small but in the same batch"), &small);
  lock.Release();
  loop.Run();
  CHECK(blocker.status.ok());
  REQUIRE(big.called);
  REQUIRE(small.called);
  CHECK_FALSE(big.status.ok());
  CHECK_FALSE(small.status.ok());
  CHECK(big.status.message() == small.status.message());
  CHECK_THAT(big.status.message(), Catch::Contains("database or disk is full"));

  // The cause is gone for the next batch (it fits): the store keeps working.
  Outcome after;
  AddAndRecord(*store, Record(5, "fn", "fits"), &after);
  loop.Run();
  CHECK(after.status.ok());

  CHECK(testing::StoredIds(path) == "1,2,5");
}

TEST_CASE("store retries removes of a failed batch with the next one", "[storage]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  Loop loop;
  auto store = OpenStore(loop, path, 40);
  store->Add(Record(1, "fn", "done soon"), [](const Status& s) { CHECK(s.ok()); });
  store->SetHandleCeiling(100);
  loop.Run();

  WriteLock lock(path);
  store->Add(Record(2, "fn", "blocker"), [](const Status& s) { CHECK(s.ok()); });
  LetWriterBlock(loop);
  Outcome big;
  store->Remove(1);
  store->SetHandleCeiling(200);
  AddAndRecord(*store, Record(3, "fn", std::string(1 << 20, 'x')), &big);
  lock.Release();
  loop.Run();
  REQUIRE_FALSE(big.status.ok());

  Outcome next;
  AddAndRecord(*store, Record(4, "fn", "ok"), &next);
  loop.Run();
  CHECK(next.status.ok());
  CHECK(testing::StoredIds(path) == "2,4");
  RawDb raw(path);
  CHECK(raw.Int("SELECT value FROM roundhouse_meta WHERE key = 'handle_ceiling'") == 200);
}

}  // namespace
// ---- job segments (schema v3, segment_index.h)

// Adds ids [first, last] in one batch and runs until they are committed.
void AddBatch(Loop& loop, SqliteStore& store, uint64_t first, uint64_t last) {
  for (uint64_t id = first; id <= last; ++id) {
    store.Add(Record(id, "fn", "job " + std::to_string(id)),
              [](const Status& s) { CHECK(s.ok()); });
  }
  loop.Run();
}

void RemoveRange(Loop& loop, SqliteStore& store, uint64_t first, uint64_t last) {
  for (uint64_t id = first; id <= last; ++id) store.Remove(id);
  // Removes have no callback: one more add carries them into a commit we can wait for.
  loop.RunOnce();
}

std::string Ids(uint64_t first, uint64_t last) {
  std::string out;
  for (uint64_t id = first; id <= last; ++id) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out;
}

TEST_CASE("store writes one segment row per commit and deletes it with its last job",
          "[storage][segment]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  Loop loop;
  auto store = OpenStore(loop, path);
  AddBatch(loop, *store, 1, 100);
  RawDb raw(path);
  CHECK(raw.Int("SELECT count(*) FROM roundhouse_job_segments") == 1);
  CHECK(raw.Int("SELECT count(*) FROM roundhouse_jobs") == 0);

  RemoveRange(loop, *store, 1, 60);
  AddBatch(loop, *store, 101, 101);  // its commit carries the removes
  CHECK(raw.Int("SELECT count(*) FROM roundhouse_job_segments") == 2);
  CHECK(raw.Int("SELECT count(*) FROM roundhouse_job_segment_done") == 1);
  CHECK(testing::StoredIds(path) == Ids(61, 101));

  RemoveRange(loop, *store, 61, 101);
  AddBatch(loop, *store, 102, 102);
  CHECK(testing::StoredIds(path) == "102");
  CHECK(raw.Int("SELECT count(*) FROM roundhouse_job_segments") == 1);
  CHECK(raw.Int("SELECT count(*) FROM roundhouse_job_segment_done") == 0);
}

TEST_CASE("store compacts a segment down to a quarter, and replay keeps id order",
          "[storage][segment]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    AddBatch(loop, *store, 1, 100);    // segment 1
    AddBatch(loop, *store, 200, 200);  // segment 2: a later id
    RemoveRange(loop, *store, 1, 74);  // 26 of 100 left: not yet sparse
    AddBatch(loop, *store, 201, 201);
    RawDb raw(path);
    CHECK(raw.Int("SELECT count(*) FROM roundhouse_job_segments WHERE id = 1") == 1);
    RemoveRange(loop, *store, 75, 75);  // 25 of 100: copied into the next segment
    AddBatch(loop, *store, 202, 202);
    CHECK(raw.Int("SELECT count(*) FROM roundhouse_job_segments WHERE id = 1") == 0);
    CHECK(raw.Int("SELECT count(*) FROM roundhouse_job_segment_done WHERE segment = 1") == 0);
    // Jobs 76..100 now sit in a segment after the one holding 200: replay sorts them back.
    CHECK(testing::StoredIds(path) == Ids(76, 100) + ",200,201,202");
    // The moved jobs are still removable where they now live.
    RemoveRange(loop, *store, 76, 99);
    AddBatch(loop, *store, 203, 203);
    store->Close();
  }
  CHECK(testing::StoredIds(path) == "100,200,201,202,203");
  // A restart reloads the index: removes keep working on the reopened store.
  Loop loop;
  auto store = OpenStore(loop, path);
  (void)ReplayAll(*store);
  RemoveRange(loop, *store, 100, 100);
  RemoveRange(loop, *store, 201, 201);
  AddBatch(loop, *store, 204, 204);
  store->Close();
  CHECK(testing::StoredIds(path) == "200,202,203,204");
}

TEST_CASE("a failed commit that compacts leaves the segments as they were; the next one compacts",
          "[storage][segment]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  Loop loop;
  auto store = OpenStore(loop, path, 40);  // no room for a 1 MB job
  AddBatch(loop, *store, 1, 100);
  RemoveRange(loop, *store, 1, 74);  // 26 of 100 left
  AddBatch(loop, *store, 101, 101);

  WriteLock lock(path);
  store->Add(Record(102, "fn", "blocker"), [](const Status& s) { CHECK(s.ok()); });
  LetWriterBlock(loop);
  store->Remove(75);  // 25 of 100: this batch compacts segment 1 ...
  Outcome big;
  AddAndRecord(*store, Record(103, "fn", std::string(1 << 20, 'x')), &big);  // ... and fails
  lock.Release();
  loop.Run();
  REQUIRE_FALSE(big.status.ok());
  {
    RawDb raw(path);
    CHECK(raw.Int("SELECT count(*) FROM roundhouse_job_segments WHERE id = 1") == 1);
  }
  CHECK(testing::StoredIds(path) == Ids(75, 102));

  AddBatch(loop, *store, 104, 104);  // carries the remove of 75 again, and compacts
  RawDb raw(path);
  CHECK(raw.Int("SELECT count(*) FROM roundhouse_job_segments WHERE id = 1") == 0);
  CHECK(testing::StoredIds(path) == Ids(76, 102) + ",104");
  RemoveRange(loop, *store, 76, 100);  // the moved jobs are found where they went
  AddBatch(loop, *store, 105, 105);
  CHECK(testing::StoredIds(path) == "101,102,104,105");
}

TEST_CASE("store replays rows of a schema-2 file with its segments and deletes them by row",
          "[storage][segment]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    RawDb raw(path);
    raw.Exec("PRAGMA journal_mode = WAL");
    raw.Exec(
        "CREATE TABLE roundhouse_meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);"
        "CREATE TABLE roundhouse_jobs (id INTEGER PRIMARY KEY, handle TEXT NOT NULL,"
        " function BLOB NOT NULL, unique_key BLOB NOT NULL, priority INTEGER NOT NULL,"
        " when_to_run INTEGER NOT NULL, reducer BLOB NOT NULL, data BLOB NOT NULL);"
        "CREATE TABLE roundhouse_jenkins_masters (name TEXT PRIMARY KEY NOT NULL,"
        " settings TEXT NOT NULL);"
        "CREATE TABLE roundhouse_jenkins_journal (master TEXT NOT NULL, handle TEXT NOT NULL,"
        " entry TEXT NOT NULL, PRIMARY KEY(master, handle));"
        "INSERT INTO roundhouse_meta VALUES('schema_version', 2);"
        "INSERT INTO roundhouse_jobs VALUES(3, 'H:old:3', 'fn', '', 1, 0, '', 'three');"
        "INSERT INTO roundhouse_jobs VALUES(9, 'H:old:9', 'fn', 'u', 0, 0, '', 'nine');");
  }
  Loop loop;
  auto store = OpenStore(loop, path);
  {
    RawDb raw(path);
    CHECK(raw.Int("SELECT value FROM roundhouse_meta WHERE key = 'schema_version'") ==
          kSchemaVersion);
  }
  auto replayed = ReplayAll(*store);
  REQUIRE(replayed.size() == 2);
  CHECK(replayed[1].data == "nine");
  CHECK(replayed[1].priority == 0);
  AddBatch(loop, *store, 5, 5);  // between the two old rows
  CHECK(testing::StoredIds(path) == "3,5,9");
  RemoveRange(loop, *store, 3, 3);
  AddBatch(loop, *store, 10, 10);
  RawDb raw(path);
  CHECK(raw.Int("SELECT count(*) FROM roundhouse_jobs") == 1);
  CHECK(testing::StoredIds(path) == "5,9,10");
}

TEST_CASE("store refuses to open a file with an unreadable segment, naming it and the option",
          "[storage][segment]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    AddBatch(loop, *store, 1, 3);
    store->Close();
  }
  {
    RawDb raw(path);
    raw.Exec("INSERT INTO roundhouse_job_segments(id, records) VALUES(7, x'ff01')");
  }
  Loop loop;
  SqliteOptions options;
  options.path = path;
  auto store = SqliteStore::Open(loop.get(), options);
  REQUIRE_FALSE(store.ok());
  CHECK_THAT(store.status().message(), Catch::Contains("job segment 7: bytes 0 to 2"));
  CHECK_THAT(store.status().message(), Catch::Contains(path));
  CHECK_THAT(store.status().message(), Catch::Contains(kSkipDamagedOption));
}

}  // namespace roundhouse::storage
