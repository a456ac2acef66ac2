// The byte format of a job segment: the background jobs of one group commit, stored as one BLOB
// in one row of roundhouse_job_segments (see segment_index.h for why, doc/storage.md for the
// whole file). Schema v4 format:
//
//   segment = record*
//   record  = varint(length of body) body crc32c
//   body    = varint(id) u8(priority) varint(zigzag(when))
//             str(handle) str(function) str(unique) str(reducer) str(data)
//   str     = varint(length) bytes
//   crc32c  = 4 bytes, little-endian: CRC-32C (crc32c.h) of the varint and the body before it
//
// Varints are LEB128 (7 bits a byte, low bits first, at most 10 bytes). The id comes first so
// that reading the ids of a segment skips every payload. A record is self-delimiting and carries
// its own checksum, so it can be copied from one segment to another byte for byte (compaction
// does) and stays verifiable wherever it lands.
//
// Schema v3 records had the same varint and body without the checksum; the v3 -> v4 migration
// rewrites them (ConvertLegacySegment).
//
// Damage. Decoding never trusts the blob: nothing is read past the end, and a record whose
// checksum does not match is reported as damaged, never decoded into a job. A damaged record is
// skipped over when its end is confirmed (it is the segment's last record, or the record after
// it is intact), so one flipped byte costs one job, not the segment; when its end cannot be
// confirmed (its length itself may be what was damaged) the rest of the segment is unreadable.
//
// Thread-safety: pure functions and a reader over caller-owned bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "storage/job_store.h"

namespace roundhouse::storage::segment {

// Bytes of the checksum at the end of each record.
inline constexpr size_t kChecksumBytes = 4;

// Appends `rec` as one record to `out`.
void AppendRecord(const JobRecord& rec, std::string* out);

// The checksum `rec` carries when encoded (the last 4 bytes of AppendRecord's output). Rows of
// roundhouse_jobs store it in their `checksum` column.
uint32_t RecordChecksum(const JobRecord& rec);

// Walks the records of one segment blob, in order.
class Reader {
 public:
  explicit Reader(std::string_view blob) : blob_(blob) {}

  bool done() const { return pos_ >= blob_.size(); }
  // Byte offset of the next record (of the unreadable rest after an error).
  size_t offset() const { return pos_; }

  // The next record: its bytes (length prefix and checksum included, ready to copy into another
  // segment), whether its checksum matches, and its id as stored (meaningful only when intact).
  // A damaged record is returned (intact == false) when its end is confirmed. Error when the
  // rest of the blob cannot be delimited; the reader then stays where it is.
  struct Entry {
    uint64_t id = 0;
    std::string_view bytes;
    bool intact = false;
  };
  Result<Entry> Next();

 private:
  std::string_view blob_;
  size_t pos_ = 0;
};

// Decodes one record as returned in Reader::Entry::bytes. Error when its checksum does not match
// or it does not parse; `rec` is then unspecified.
Status DecodeRecord(std::string_view bytes, JobRecord* rec);

// For the log line about a damaged record: "handle H:x:12, function f, 1024 bytes of data (as
// stored, unverified)" when its fields still parse, else what can be said of it. Printable.
std::string DescribeDamaged(std::string_view bytes);

// Rewrites a schema v3 segment (records without checksums) as a v4 one. Error when the v3 blob
// does not parse; `out` then holds nothing useful.
Status ConvertLegacySegment(std::string_view v3_blob, std::string* out);

}  // namespace roundhouse::storage::segment
