// Job segments: the record format (segment_codec.h) and the writer's index of where each job
// lives (segment_index.h): plan against the index, apply after the commit, compaction choice.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "storage/segment_codec.h"
#include "storage/segment_index.h"
#include "test/unit/storage/storage_test_util.h"

namespace roundhouse::storage {
namespace {

using testing::Record;
using testing::SameRecord;

std::vector<JobRecord> SampleRecords() {
  return {
      Record(1, "fn", "plain"),
      Record(2, "fn", std::string("a\0b\xff", 4), "uniq", 0),
      Record(300, std::string("f\0n", 3), "", "", 2),
      Record(9'223'372'036'854'775'807ULL, "max-id", std::string(300, 'x'), "u", 1, -5),
      Record(7, "epoch", "later", "e", 1, 1'900'000'000, "reducer-fn"),
  };
}

std::string Encode(const std::vector<JobRecord>& records) {
  std::string blob;
  for (const JobRecord& rec : records) segment::AppendRecord(rec, &blob);
  return blob;
}

TEST_CASE("segment records round-trip every field, in order", "[storage][segment]") {
  const auto records = SampleRecords();
  const std::string blob = Encode(records);
  segment::Reader reader(blob);
  for (const JobRecord& want : records) {
    REQUIRE_FALSE(reader.done());
    auto entry = reader.Next();
    REQUIRE(entry.ok());
    CHECK(entry.value().id == want.id);
    JobRecord got;
    got.handle = "stale bytes are overwritten";
    REQUIRE(segment::DecodeRecord(entry.value().bytes, &got).ok());
    CHECK(SameRecord(got, want));
  }
  CHECK(reader.done());
}

TEST_CASE("a record's bytes copied into another segment read back the same", "[storage][segment]") {
  const auto records = SampleRecords();
  const std::string blob = Encode(records);
  std::string copy;
  segment::Reader reader(blob);
  while (!reader.done()) {
    auto entry = reader.Next();
    REQUIRE(entry.ok());
    if (entry.value().id % 2 == 1) copy.append(entry.value().bytes);
  }
  segment::Reader again(copy);
  std::vector<uint64_t> ids;
  while (!again.done()) {
    auto entry = again.Next();
    REQUIRE(entry.ok());
    ids.push_back(entry.value().id);
  }
  CHECK(ids == std::vector<uint64_t>{1, 9'223'372'036'854'775'807ULL, 7});
}

TEST_CASE("a truncated segment is an error at the bad record, never a read past the end",
          "[storage][segment]") {
  const std::string blob = Encode(SampleRecords());
  std::vector<size_t> boundaries{0};
  {
    segment::Reader reader(blob);
    while (!reader.done()) {
      auto entry = reader.Next();
      REQUIRE(entry.ok());
      boundaries.push_back(boundaries.back() + entry.value().bytes.size());
    }
  }
  for (size_t cut = 1; cut < blob.size(); ++cut) {
    INFO("cut at " << cut);
    const std::string prefix = blob.substr(0, cut);
    segment::Reader reader(prefix);
    bool failed = false;
    size_t records = 0;
    while (!reader.done() && !failed) {
      auto entry = reader.Next();
      if (!entry.ok()) {
        failed = true;
        CHECK_THAT(entry.status().message(), Catch::Contains("at byte"));
        break;
      }
      ++records;
      JobRecord rec;
      CHECK(segment::DecodeRecord(entry.value().bytes, &rec).ok());
    }
    const bool on_boundary =
        std::find(boundaries.begin(), boundaries.end(), cut) != boundaries.end();
    CHECK(failed == !on_boundary);
  }
}

TEST_CASE("decoding rejects inconsistent records without crashing", "[storage][segment]") {
  JobRecord rec;
  CHECK_FALSE(segment::DecodeRecord("", &rec).ok());
  CHECK_FALSE(segment::DecodeRecord(std::string("\x05\x01", 2), &rec).ok());  // length too long
  std::string one;
  segment::AppendRecord(Record(1, "fn", "data"), &one);
  std::string bad_priority = one;
  bad_priority[2] = 7;  // after the length and the one-byte id
  CHECK_FALSE(segment::DecodeRecord(bad_priority, &rec).ok());
  std::string trailing = one + "x";
  CHECK_FALSE(segment::DecodeRecord(trailing, &rec).ok());
  // Every byte value in every position: a bounded walk, each record decoded or refused.
  for (size_t pos = 0; pos < one.size(); ++pos) {
    for (int v = 0; v < 256; ++v) {
      std::string mutated = one;
      mutated[pos] = static_cast<char>(v);
      segment::Reader reader(mutated);
      for (int guard = 0; guard < 64 && !reader.done(); ++guard) {
        auto entry = reader.Next();
        if (!entry.ok()) break;
        (void)segment::DecodeRecord(entry.value().bytes, &rec);
      }
    }
  }
}

// An index with segment 1 = jobs 10..19 and segment 2 = jobs 20..21, loaded as after a restart.
SegmentIndex TwoSegments() {
  SegmentIndex index;
  std::vector<uint64_t> first;
  for (uint64_t id = 10; id < 20; ++id) first.push_back(id);
  index.Load(1, first, 1000, {});
  index.Load(2, {20, 21}, 200, {});
  return index;
}

TEST_CASE("segment index: a plan changes nothing until it is applied", "[storage][segment]") {
  SegmentIndex index = TwoSegments();
  REQUIRE(index.jobs() == 12);
  SegmentIndex::Delta delta;
  CHECK(index.PlanRemove(10, &delta));
  CHECK(index.PlanRemove(10, &delta));  // twice in one batch counts once
  CHECK_FALSE(index.PlanRemove(99, &delta));
  index.PlanAppend(30, &delta)->append("record");
  REQUIRE(delta.touched.size() == 1);
  CHECK(delta.touched.at(1).live == 9);
  CHECK(delta.removed == std::vector<uint64_t>{10});
  REQUIRE(delta.fresh.size() == 1);
  CHECK(delta.fresh[0].id == 3);
  // Not applied (a failed commit): the index is as it was.
  CHECK(index.jobs() == 12);
  CHECK(index.Where(10) != nullptr);
  CHECK(index.Where(30) == nullptr);
  CHECK(index.next_segment_id() == 3);

  index.Apply(std::move(delta));
  CHECK(index.jobs() == 12);  // 10 gone, 30 added
  CHECK(index.Where(10) == nullptr);
  REQUIRE(index.Where(30) != nullptr);
  CHECK(index.Where(30)->segment == 3);
  CHECK(index.Where(30)->slot == 0);
  CHECK(index.next_segment_id() == 4);
}

TEST_CASE("segment index: a segment goes with its last job", "[storage][segment]") {
  SegmentIndex index = TwoSegments();
  SegmentIndex::Delta delta;
  CHECK(index.PlanRemove(20, &delta));
  CHECK(index.PlanRemove(21, &delta));
  CHECK(delta.touched.at(2).live == 0);
  // Not a compaction candidate: it holds nothing to copy.
  CHECK(index.PlanCompaction(delta).empty());
  index.Apply(std::move(delta));
  CHECK(index.segments() == 1);
  CHECK(index.jobs() == 10);
}

TEST_CASE("segment index: a quarter or fewer live jobs makes a segment a compaction candidate",
          "[storage][segment]") {
  SegmentIndex index = TwoSegments();
  SegmentIndex::Delta delta;
  for (uint64_t id = 10; id < 17; ++id) CHECK(index.PlanRemove(id, &delta));  // 3 of 10 left
  CHECK(index.PlanCompaction(delta).empty());
  CHECK(index.PlanRemove(17, &delta));  // 2 of 10 left
  CHECK(index.PlanCompaction(delta) == std::vector<uint64_t>{1});

  // The writer copies the live records and marks the segment compacted; after Apply the jobs
  // live in the new segment.
  for (uint64_t id : {18, 19}) index.PlanAppend(id, &delta)->append("r");
  delta.compacted.push_back(1);
  index.Apply(std::move(delta));
  CHECK(index.segments() == 2);
  REQUIRE(index.Where(18) != nullptr);
  CHECK(index.Where(18)->segment == 3);
  CHECK(index.Where(19)->slot == 1);
  SegmentIndex::Delta next;
  CHECK(index.PlanCompaction(next).empty());
}

TEST_CASE("segment index: a candidate left over by one batch waits for the next one",
          "[storage][segment]") {
  SegmentIndex index;
  // Three sparse segments loaded from disk (bitmaps with most bits set), big enough that one
  // batch's compaction budget takes only the first two.
  const size_t big = kCompactBytesPerCommit / 2;
  for (uint64_t seg = 1; seg <= 3; ++seg) {
    index.Load(seg, {seg * 100, seg * 100 + 1, seg * 100 + 2, seg * 100 + 3}, big, {0x0e});
  }
  SegmentIndex::Delta delta;
  CHECK(index.PlanCompaction(delta) == std::vector<uint64_t>{1, 2});
  delta.compacted = {1, 2};
  index.PlanAppend(100, &delta)->append("r");
  index.PlanAppend(200, &delta)->append("r");
  index.Apply(std::move(delta));
  SegmentIndex::Delta next;
  CHECK(index.PlanCompaction(next) == std::vector<uint64_t>{3});
}

TEST_CASE("segment index: new segments close at kSegmentBytes", "[storage][segment]") {
  SegmentIndex index;
  SegmentIndex::Delta delta;
  index.PlanAppend(1, &delta)->append(kSegmentBytes, 'x');
  index.PlanAppend(2, &delta)->append("small");
  REQUIRE(delta.fresh.size() == 2);
  CHECK(delta.fresh[0].id == 1);
  CHECK(delta.fresh[1].id == 2);
  CHECK(delta.fresh[1].ids == std::vector<uint64_t>{2});
}

}  // namespace
}  // namespace roundhouse::storage
