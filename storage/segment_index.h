// Where each stored background job lives: the writer thread's map of the job segments.
//
// Why segments (schema v3). Storing one row per job made the SQLite writer spend ~1.6 µs of CPU
// per job (8 bound columns, record building, B-tree insert), and the durable rate stayed at
// 0.36-0.43 of the in-memory one (issue 3). A segment is the jobs of one group commit in one
// BLOB (format: segment_codec.h), so a commit inserts one row however many jobs it holds.
//
//   roundhouse_job_segments(id, records)      one row per commit's worth of jobs (at most
//                                             kSegmentBytes each)
//   roundhouse_job_segment_done(segment, done) a bitmap per segment with finished jobs: bit i
//                                             set = record i was removed. A table of its own
//                                             because SQLite rewrites a whole row, overflow
//                                             pages and all, on any UPDATE of it.
//
// A Remove sets a bit; the segment row goes when its last job does. A segment whose live jobs
// fall to a quarter or less of its records is compacted: its live records are copied byte for
// byte into the next new segment and it is deleted, so the file holds at most about four times
// the bytes of the jobs still queued (plus the newest segments), even when a few long-lived jobs
// (epoch jobs, functions without workers) are scattered through busy segments.
//
// Jobs written before schema v3, and jobs imported from gearmand, stay in roundhouse_jobs (one
// row per job); they are not in this index and their Remove is a row delete.
//
// A batch is planned against the index (Plan), written in one transaction, and applied to the
// index only when the transaction committed (Apply): a failed commit leaves the index exactly as
// the database still is.
//
// Thread-safety: the writer thread's alone (built before that thread starts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace roundhouse::storage {

// A new segment is closed once its records reach this size; the next record starts another.
// Bounds the work of compacting one segment.
inline constexpr size_t kSegmentBytes = 1 << 20;
// Compaction reads at most this many bytes of old segments per commit (at least one segment).
inline constexpr size_t kCompactBytesPerCommit = 4 << 20;

class SegmentIndex {
 public:
  struct Location {
    uint64_t segment = 0;
    uint32_t slot = 0;
  };
  struct Segment {
    uint32_t slots = 0;         // records in the blob
    uint32_t live = 0;          // records not removed
    size_t bytes = 0;           // blob size
    std::vector<uint8_t> done;  // bitmap, (slots + 7) / 8 bytes

    bool is_done(uint32_t slot) const { return (done[slot / 8] >> (slot % 8) & 1) != 0; }
    // Few enough live records that copying them out is worth it (or none at all).
    bool sparse() const { return live * 4 <= slots; }
  };

  // A batch's effect, planned against the index. Nothing here is in the index until Apply.
  struct Delta {
    // Segments whose done bitmap changed: their new state (a copy).
    std::map<uint64_t, Segment> touched;
    // Job ids removed from segments.
    std::vector<uint64_t> removed;
    // Segments whose live records were copied into new segments: deleted with their bitmap.
    std::vector<uint64_t> compacted;
    // New segments, in order: id, blob, and the job id of each record.
    struct Fresh {
      uint64_t id = 0;
      std::string blob;
      std::vector<uint64_t> ids;
    };
    std::vector<Fresh> fresh;

    void clear();
  };

  // Loading, before the writer starts: one stored segment with the job id of each record and
  // its bitmap (empty = nothing removed; shorter than needed reads as zeros).
  void Load(uint64_t segment, std::vector<uint64_t> ids, size_t bytes, std::vector<uint8_t> done);

  // New segments get ids of at least `id` (a finished-job bitmap left without its segment, say
  // by a salvage, must never apply to a new segment that would take its id).
  void ReserveIdsBelow(uint64_t id) {
    if (id > next_segment_) next_segment_ = id;
  }

  // Planning. Marks job `id` removed in `delta`; false if no segment holds it (then it may be a
  // row of roundhouse_jobs).
  bool PlanRemove(uint64_t id, Delta* delta) const;
  // Registers job `id` as the next record of the delta's new segments and returns the blob the
  // caller appends its encoded record (segment_codec.h) to. Opens a new segment once the current
  // one holds kSegmentBytes.
  std::string* PlanAppend(uint64_t id, Delta* delta) const;
  // Segments to compact in this batch, oldest first, within kCompactBytesPerCommit: those left
  // sparse by earlier batches and those this delta makes sparse. Does not include segments left
  // with no live record (the writer deletes those without reading them).
  std::vector<uint64_t> PlanCompaction(const Delta& delta) const;
  // The state a segment has in `delta` (touched) or else in the index; nullptr if unknown.
  const Segment* Find(uint64_t segment, const Delta& delta) const;
  // Where job `id` is stored in the index; nullptr if in no segment. (Tests.)
  const Location* Where(uint64_t id) const;

  // After the commit of `delta`'s batch: makes it the index's state.
  void Apply(Delta&& delta);

  // Never compact `segment` again: reading it showed damage to a record still queued (the
  // writer logged it). It stays as it is until its last live job is removed, then it is deleted
  // without being read. Not part of any delta: it records what the file holds, whatever the
  // outcome of the batch that found it.
  void Pin(uint64_t segment) {
    pinned_.insert(segment);
    sparse_.erase(segment);
  }
  bool pinned(uint64_t segment) const { return pinned_.count(segment) != 0; }

  size_t jobs() const { return where_.size(); }
  size_t segments() const { return segments_.size(); }
  uint64_t next_segment_id() const { return next_segment_; }

 private:
  std::unordered_map<uint64_t, Location> where_;
  std::map<uint64_t, Segment> segments_;
  std::set<uint64_t>
      sparse_;  // segments with live * 4 <= slots, waiting for compaction; not pinned
  std::set<uint64_t> pinned_;  // segments in segments_ never to be compacted (Pin)
  uint64_t next_segment_ = 1;
};

}  // namespace roundhouse::storage
