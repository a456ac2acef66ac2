// Storage integrity (doc/storage.md): every stored job record, bitmap and row carries a
// checksum; a flipped byte is detected, never replayed; a damaged segment is isolated (writes
// go on, start-up refuses naming kSkipDamagedOption or, with it, drops exactly the damaged jobs
// for good); the v3 -> v4 migration; the file modes of the database, its WAL and SHM.
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "storage/batch_writer.h"
#include "storage/crc32c.h"
#include "storage/segment_codec.h"
#include "storage/sqlite_schema.h"
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

std::string Encode(const std::vector<JobRecord>& records) {
  std::string blob;
  for (const JobRecord& rec : records) segment::AppendRecord(rec, &blob);
  return blob;
}

// What a reader makes of `blob`: the intact records decoded, their slots, and the damaged slots.
struct Walk {
  std::vector<std::pair<size_t, JobRecord>> intact;
  std::vector<size_t> damaged;
  bool unreadable_rest = false;
};
Walk WalkSegment(std::string_view blob) {
  Walk walk;
  segment::Reader reader(blob);
  for (size_t slot = 0; !reader.done(); ++slot) {
    auto entry = reader.Next();
    if (!entry.ok()) {
      walk.unreadable_rest = true;
      break;
    }
    if (!entry.value().intact) {
      walk.damaged.push_back(slot);
      continue;
    }
    JobRecord rec;
    REQUIRE(segment::DecodeRecord(entry.value().bytes, &rec).ok());
    walk.intact.emplace_back(slot, std::move(rec));
  }
  return walk;
}

// The stored segment blob `id` and a way to write it back.
std::string SegmentBlob(RawDb& raw, int64_t id) {
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(raw.get(), "SELECT records FROM roundhouse_job_segments WHERE id = ?1",
                             -1, &s, nullptr) == SQLITE_OK);
  sqlite3_bind_int64(s, 1, id);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  std::string blob(static_cast<const char*>(sqlite3_column_blob(s, 0)),
                   static_cast<size_t>(sqlite3_column_bytes(s, 0)));
  sqlite3_finalize(s);
  return blob;
}
void PutSegmentBlob(RawDb& raw, int64_t id, const std::string& blob) {
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(raw.get(),
                             "INSERT OR REPLACE INTO roundhouse_job_segments(id, records) "
                             "VALUES(?1, ?2)",
                             -1, &s, nullptr) == SQLITE_OK);
  sqlite3_bind_int64(s, 1, id);
  sqlite3_bind_blob(s, 2, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  REQUIRE(sqlite3_step(s) == SQLITE_DONE);
  sqlite3_finalize(s);
}

// Flips one byte of job `id`'s payload inside its stored segment, as a bad disk sector would.
void FlipPayloadByte(const std::string& path, int64_t segment, const std::string& payload) {
  RawDb raw(path);
  std::string blob = SegmentBlob(raw, segment);
  const size_t at = blob.find(payload);
  REQUIRE(at != std::string::npos);
  blob[at + payload.size() / 2] ^= 0x20;
  PutSegmentBlob(raw, segment, blob);
}

void AddRange(Loop& loop, SqliteStore& store, uint64_t first, uint64_t last,
              const std::string& function = "fn") {
  for (uint64_t id = first; id <= last; ++id) {
    store.Add(Record(id, function, "payload-" + std::to_string(id)),
              [](const Status& s) { CHECK(s.ok()); });
  }
  loop.Run();
}

Result<std::unique_ptr<SqliteStore>> TryOpen(Loop& loop, const std::string& path,
                                             bool skip_damaged) {
  SqliteOptions options;
  options.path = path;
  options.skip_damaged = skip_damaged;
  return SqliteStore::Open(loop.get(), options);
}

std::string ReplayedIds(SqliteStore& store) {
  std::string ids;
  for (const JobRecord& rec : ReplayAll(store)) {
    ids += (ids.empty() ? "" : ",") + std::to_string(rec.id);
  }
  return ids;
}

TEST_CASE("crc32c gives the standard check values", "[storage][integrity]") {
  CHECK(Crc32c("123456789") == 0xE3069283u);
  CHECK(Crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(Crc32c(std::string(32, '\xff')) == 0x62A8AB43u);
  // Streaming equals one pass, across every split (the hardware path takes 8 bytes at a time).
  const std::string text = "The quick brown fox jumps over the lazy dog, twice over.";
  for (size_t split = 0; split <= text.size(); ++split) {
    CHECK(Crc32c(Crc32c(text.substr(0, split)), text.substr(split)) == Crc32c(text));
  }
}

TEST_CASE("crc32c: the CPU instruction and the table agree on every length and alignment",
          "[storage][integrity]") {
  std::string bytes;
  uint32_t x = 12345;
  for (int i = 0; i < 300; ++i) {
    x = x * 1103515245 + 12345;
    bytes.push_back(static_cast<char>(x >> 16));
  }
  for (size_t start = 0; start < 9; ++start) {
    for (size_t len = 0; start + len <= bytes.size(); len += 7) {
      const std::string_view piece = std::string_view(bytes).substr(start, len);
      REQUIRE(Crc32c(piece) == Crc32cPortable(0, piece));
    }
  }
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  CHECK(Crc32cUsesHardware() == (__builtin_cpu_supports("sse4.2") != 0));
#endif
}

TEST_CASE("flipping any byte of a record, in any way, is detected", "[storage][integrity]") {
  const JobRecord rec = Record(123456, "resize-image", std::string(200, 'p') + "\x01\xfe", "u-1", 0,
                               1'900'000'000, "reduce");
  std::string bytes;
  segment::AppendRecord(rec, &bytes);
  JobRecord out;
  REQUIRE(segment::DecodeRecord(bytes, &out).ok());
  REQUIRE(SameRecord(out, rec));
  size_t detected = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int mask = 1; mask < 256; ++mask) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      JobRecord got;
      INFO("byte " << i << " xor " << mask);
      REQUIRE_FALSE(segment::DecodeRecord(bad, &got).ok());
      ++detected;
    }
  }
  CHECK(detected == bytes.size() * 255);
}

TEST_CASE("a flipped byte in a segment costs at most the records it can reach, never a wrong one",
          "[storage][integrity]") {
  const std::vector<JobRecord> records = {Record(1, "fn", "first payload"),
                                          Record(2, "fn", std::string(150, 'm')),
                                          Record(3, "other", "third payload")};
  const std::string blob = Encode(records);
  std::string first;
  segment::AppendRecord(records[0], &first);
  std::string second;
  segment::AppendRecord(records[1], &second);
  for (size_t i = 0; i < blob.size(); ++i) {
    for (int mask : {0x01, 0x80, 0xff}) {
      std::string bad = blob;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      INFO("byte " << i << " xor " << mask);
      const Walk walk = WalkSegment(bad);
      // Whatever reads as intact is exactly what was written in that slot.
      for (const auto& [slot, rec] : walk.intact) {
        REQUIRE(slot < records.size());
        CHECK(SameRecord(rec, records[slot]));
      }
      // The damaged record is the one holding the byte; a damaged payload byte (past the length
      // varint) loses that record only.
      const size_t hit = i < first.size() ? 0 : i < first.size() + second.size() ? 1 : 2;
      CHECK(walk.intact.size() <= 2);
      CHECK(std::none_of(walk.intact.begin(), walk.intact.end(),
                         [&](const auto& e) { return e.first == hit; }));
      const size_t start = hit == 0 ? 0 : hit == 1 ? first.size() : first.size() + second.size();
      if (i >= start + 2) {
        CHECK(walk.intact.size() == 2);
        CHECK(walk.damaged == std::vector<size_t>{hit});
      }
    }
  }
}

TEST_CASE("a v3 segment converts to v4 with the same records", "[storage][integrity]") {
  const std::vector<JobRecord> records = {Record(1, "fn", "a"),
                                          Record(2, "g", std::string(200, 'b'))};
  std::string v3;
  for (const JobRecord& rec : records) {
    std::string v4;
    segment::AppendRecord(rec, &v4);
    // A v3 record is the v4 one without its checksum (same length prefix and body).
    v3 += v4.substr(0, v4.size() - segment::kChecksumBytes);
  }
  std::string converted;
  REQUIRE(segment::ConvertLegacySegment(v3, &converted).ok());
  CHECK(converted == Encode(records));
  CHECK_FALSE(segment::ConvertLegacySegment(v3.substr(0, v3.size() - 1), &converted).ok());
}

TEST_CASE("a flipped payload byte on disk is refused at start-up, naming the job and the option",
          "[storage][integrity]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    AddRange(loop, *store, 1, 5, "resize");
    AddRange(loop, *store, 6, 8, "other");
    store->Close();
  }
  FlipPayloadByte(path, 1, "payload-3");
  {
    Loop loop;
    auto refused = TryOpen(loop, path, false);
    REQUIRE_FALSE(refused.ok());
    const std::string message = refused.status().message();
    CHECK_THAT(message, Catch::Contains("job segment 1 record 2"));
    CHECK_THAT(message, Catch::Contains("H:test:3"));
    CHECK_THAT(message, Catch::Contains("function resize"));
    CHECK_THAT(message, Catch::Contains(kSkipDamagedOption));
  }
  {
    // The refusal wrote nothing: still refused the second time.
    Loop loop;
    CHECK_FALSE(TryOpen(loop, path, false).ok());
  }
  {
    Loop loop;
    auto skipped = TryOpen(loop, path, true);
    INFO(skipped.status().message());
    REQUIRE(skipped.ok());
    CHECK(ReplayedIds(*skipped.value()) == "1,2,4,5,6,7,8");
    // Writes and removes go on, including in the damaged segment.
    AddRange(loop, *skipped.value(), 9, 9);
    skipped.value()->Remove(1);
    AddRange(loop, *skipped.value(), 10, 10);
    skipped.value()->Close();
  }
  // The damaged job was retired for good: a plain start works and serves the rest.
  Loop loop;
  auto store = TryOpen(loop, path, false);
  INFO(store.status().message());
  REQUIRE(store.ok());
  CHECK(ReplayedIds(*store.value()) == "2,4,5,6,7,8,9,10");
}

TEST_CASE("damage to a finished record loses nothing and needs no option", "[storage][integrity]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    AddRange(loop, *store, 1, 10);
    store->Remove(4);
    AddRange(loop, *store, 11, 11);
    store->Close();
  }
  FlipPayloadByte(path, 1, "payload-4");
  Loop loop;
  auto store = TryOpen(loop, path, false);
  INFO(store.status().message());
  REQUIRE(store.ok());
  CHECK(ReplayedIds(*store.value()) == "1,2,3,5,6,7,8,9,10,11");
}

TEST_CASE("a segment damaged while the server runs never blocks other writes",
          "[storage][integrity]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    AddRange(loop, *store, 1, 100);  // segment 1
    FlipPayloadByte(path, 1, "payload-50");
    // Make segment 1 sparse: the next commits want to compact it and meet the damaged record,
    // which is still queued. Before: every later commit failed ("changed or is corrupt").
    for (uint64_t id = 1; id <= 100; ++id) {
      if (id % 10 != 0) store->Remove(id);
    }
    for (int round = 0; round < 3; ++round) {
      testing::Outcome outcome;
      testing::AddAndRecord(*store, Record(200 + round, "other", "after"), &outcome);
      loop.Run();
      INFO(outcome.status.message());
      CHECK(outcome.status.ok());
    }
    {
      RawDb raw(path);
      CHECK(raw.Int("SELECT count(*) FROM roundhouse_job_segments WHERE id = 1") == 1);
    }
    // Its jobs still finish; once the last is removed the segment goes without being read.
    for (uint64_t id = 10; id <= 100; id += 10) {
      if (id != 50) store->Remove(id);
    }
    AddRange(loop, *store, 203, 203);
    store->Close();
  }
  {
    Loop loop;
    auto refused = TryOpen(loop, path, false);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.status().message(), Catch::Contains("H:test:50"));
  }
  {
    Loop loop;
    auto skipped = TryOpen(loop, path, true);
    REQUIRE(skipped.ok());
    CHECK(ReplayedIds(*skipped.value()) == "200,201,202,203");
    skipped.value()->Close();
  }
  Loop loop;
  auto store = TryOpen(loop, path, false);
  REQUIRE(store.ok());
  CHECK(ReplayedIds(*store.value()) == "200,201,202,203");
  AddRange(loop, *store.value(), 204, 204);
  store.value()->Close();
  RawDb raw(path);
  CHECK(raw.Int("SELECT count(*) FROM roundhouse_job_segments WHERE id = 1") == 0);
}

TEST_CASE("an unreadable rest of a segment is cut off with the option, the records before kept",
          "[storage][integrity]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    AddRange(loop, *store, 1, 6);
    store->Close();
  }
  {
    RawDb raw(path);
    std::string blob = SegmentBlob(raw, 1);
    std::string first;
    segment::AppendRecord(Record(1, "fn", "payload-1"), &first);
    blob[first.size() * 3] = static_cast<char>(0x7f);  // record 4's length: its end is lost
    PutSegmentBlob(raw, 1, blob);
  }
  {
    Loop loop;
    auto refused = TryOpen(loop, path, false);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.status().message(), Catch::Contains("(after record 3)"));
  }
  {
    Loop loop;
    auto skipped = TryOpen(loop, path, true);
    REQUIRE(skipped.ok());
    CHECK(ReplayedIds(*skipped.value()) == "1,2,3");
    skipped.value()->Close();
  }
  Loop loop;
  auto store = TryOpen(loop, path, false);
  REQUIRE(store.ok());
  CHECK(ReplayedIds(*store.value()) == "1,2,3");
}

TEST_CASE("a damaged finished-job bitmap is refused; with the option every intact job is kept",
          "[storage][integrity]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    AddRange(loop, *store, 1, 10);
    store->Remove(2);
    AddRange(loop, *store, 11, 11);
    store->Close();
  }
  {
    RawDb raw(path);
    raw.Exec("UPDATE roundhouse_job_segment_done SET done = x'00' WHERE segment = 1");
  }
  {
    Loop loop;
    auto refused = TryOpen(loop, path, false);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.status().message(), Catch::Contains("finished-job bitmap is damaged"));
  }
  {
    Loop loop;
    auto skipped = TryOpen(loop, path, true);
    REQUIRE(skipped.ok());
    CHECK(ReplayedIds(*skipped.value()) == "1,2,3,4,5,6,7,8,9,10,11");  // 2 runs again
    skipped.value()->Close();
  }
  Loop loop;
  auto store = TryOpen(loop, path, false);
  REQUIRE(store.ok());
}

TEST_CASE("a damaged row of roundhouse_jobs is refused; with the option it is deleted",
          "[storage][integrity]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    store->Close();
  }
  {
    RawDb raw(path);
    // Rows as the gearmand import writes them (with their checksum), then one byte changed.
    for (uint64_t id : {3, 4}) {
      const JobRecord rec = Record(id, "legacy", "row-" + std::to_string(id));
      raw.Exec(
          "INSERT INTO roundhouse_jobs(id, handle, function, unique_key, priority, "
          "when_to_run, reducer, data, checksum) VALUES(" +
          std::to_string(id) + ", '" + rec.handle + "', 'legacy', x'', 1, 0, x'', '" + rec.data +
          "', " + std::to_string(segment::RecordChecksum(rec)) + ")");
    }
    raw.Exec("UPDATE roundhouse_jobs SET data = 'row-X' WHERE id = 3");
  }
  {
    Loop loop;
    auto store = TryOpen(loop, path, false);
    REQUIRE(store.ok());  // rows are checked by replay
    std::vector<JobRecord> got;
    auto replayed = store.value()->Replay([&](JobRecord&& rec) { got.push_back(rec); });
    REQUIRE_FALSE(replayed.ok());
    CHECK_THAT(replayed.status().message(), Catch::Contains("job row 3"));
    CHECK_THAT(replayed.status().message(), Catch::Contains(kSkipDamagedOption));
  }
  {
    Loop loop;
    auto store = TryOpen(loop, path, true);
    REQUIRE(store.ok());
    CHECK(ReplayedIds(*store.value()) == "4");
  }
  RawDb raw(path);
  CHECK(raw.Int("SELECT count(*) FROM roundhouse_jobs") == 1);
}

TEST_CASE("migration v3 -> v4 checksums segments, bitmaps and rows; old jobs still replay",
          "[storage][integrity]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  auto v3_blob = [](const std::vector<JobRecord>& records) {
    std::string blob;
    for (const JobRecord& rec : records) {
      std::string v4;
      segment::AppendRecord(rec, &v4);
      blob += v4.substr(0, v4.size() - segment::kChecksumBytes);
    }
    return blob;
  };
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
        "CREATE TABLE roundhouse_job_segments (id INTEGER PRIMARY KEY, records BLOB NOT NULL);"
        "CREATE TABLE roundhouse_job_segment_done (segment INTEGER PRIMARY KEY,"
        " done BLOB NOT NULL);"
        "INSERT INTO roundhouse_meta VALUES('schema_version', 3);"
        "INSERT INTO roundhouse_jobs VALUES(2, 'H:test:2', 'row', '', 7, 0, '', 'two');"
        // Job 5 finished: bit 1 of segment 1.
        "INSERT INTO roundhouse_job_segment_done VALUES(1, x'02');");
    PutSegmentBlob(raw, 1,
                   v3_blob({Record(4, "fn", "four"), Record(5, "fn", "five"),
                            Record(6, "fn", "six", "u", 0, 1'900'000'000)}));
    PutSegmentBlob(raw, 2, v3_blob({Record(8, "fn", "eight")}));
  }
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    RawDb raw(path);
    CHECK(raw.Int("SELECT value FROM roundhouse_meta WHERE key = 'schema_version'") == 4);
    CHECK(raw.Int("SELECT count(*) FROM roundhouse_jobs WHERE checksum IS NULL") == 0);
    CHECK(raw.Int("SELECT count(*) FROM roundhouse_job_segment_done WHERE checksum IS NULL") == 0);
    const auto replayed = ReplayAll(*store);
    REQUIRE(replayed.size() == 4);
    CHECK(replayed[0].id == 2);
    CHECK(replayed[0].priority == 1);  // out-of-range 7 reads as NORMAL, as before
    CHECK(SameRecord(replayed[1], Record(4, "fn", "four")));
    CHECK(SameRecord(replayed[2], Record(6, "fn", "six", "u", 0, 1'900'000'000)));
    CHECK(SameRecord(replayed[3], Record(8, "fn", "eight")));
    CHECK(SegmentBlob(raw, 2) == Encode({Record(8, "fn", "eight")}));
    // The migrated segments take removes and compaction like new ones.
    store->Remove(4);
    store->Remove(2);
    AddRange(loop, *store, 9, 9);
    store->Close();
  }
  CHECK(testing::StoredIds(path) == "6,8,9");
}

TEST_CASE("a v3 segment that does not parse is kept and reported as damaged after migration",
          "[storage][integrity]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    AddRange(loop, *store, 1, 2);
    store->Close();
  }
  {
    RawDb raw(path);
    raw.Exec(
        "UPDATE roundhouse_meta SET value = 3 WHERE key = 'schema_version';"
        "ALTER TABLE roundhouse_job_segment_done DROP COLUMN checksum;"
        "ALTER TABLE roundhouse_jobs DROP COLUMN checksum;"
        "INSERT INTO roundhouse_job_segments VALUES(9, x'05ff');");
    // Segment 1 is in v4 format already; as v3 it does not parse either: both are reported.
  }
  Loop loop;
  auto refused = TryOpen(loop, path, false);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.status().message(), Catch::Contains("job segment 9"));
  auto skipped = TryOpen(loop, path, true);
  REQUIRE(skipped.ok());
}

TEST_CASE("a bitmap left without its segment never marks a new segment's jobs finished",
          "[storage][integrity]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    AddRange(loop, *store, 1, 4);  // segment 1
    AddRange(loop, *store, 5, 8);  // segment 2
    store->Remove(6);
    AddRange(loop, *store, 9, 9);  // segment 3; segment 2 gets a bitmap
    store->Close();
  }
  {
    // As a salvage that lost segments 2 and 3 would leave it (rh-salvage drops such bitmaps,
    // an older copy may not).
    RawDb raw(path);
    raw.Exec("DELETE FROM roundhouse_job_segments WHERE id >= 2");
  }
  Loop loop;
  auto store = OpenStore(loop, path);
  CHECK(ReplayedIds(*store) == "1,2,3,4");
  AddRange(loop, *store, 10, 13);
  store->Close();
  CHECK(testing::StoredIds(path) == "1,2,3,4,10,11,12,13");
}

mode_t Mode(const std::string& file) {
  struct stat st {};
  REQUIRE(stat(file.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

TEST_CASE("the database, its WAL and SHM are created 0600 whatever the umask",
          "[storage][integrity]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  const mode_t old = umask(022);
  Loop loop;
  auto store = OpenStore(loop, path);
  umask(old);
  AddRange(loop, *store, 1, 1);
  CHECK(Mode(path) == 0600);
  CHECK(Mode(path + "-wal") == 0600);
  CHECK(Mode(path + "-shm") == 0600);
  store->Close();
}

TEST_CASE("an existing 0644 database and WAL are restricted to 0600", "[storage][integrity]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  {
    RawDb raw(path);
    raw.Exec("PRAGMA journal_mode = WAL; CREATE TABLE t(x); INSERT INTO t VALUES(1)");
    REQUIRE(chmod(path.c_str(), 0644) == 0);
    REQUIRE(chmod((path + "-wal").c_str(), 0664) == 0);
    Loop loop;
    auto store = OpenStore(loop, path);  // while the WAL exists
    CHECK(Mode(path) == 0600);
    CHECK(Mode(path + "-wal") == 0600);
    store->Close();
  }
}

TEST_CASE("a file refused as not a database keeps its mode", "[storage][integrity]") {
  TempDir dir;
  const std::string path = dir.File("q.db");
  testing::WriteFile(path, "this is not a database\n");
  REQUIRE(chmod(path.c_str(), 0644) == 0);
  Loop loop;
  SqliteOptions options;
  options.path = path;
  CHECK_FALSE(SqliteStore::Open(loop.get(), options).ok());
  CHECK(Mode(path) == 0644);
}

}  // namespace
}  // namespace roundhouse::storage
