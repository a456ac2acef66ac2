// The byte format of a job segment: the background jobs of one group commit, stored as one BLOB
// in one row of roundhouse_job_segments (schema v3; see segment_index.h for why).
//
//   segment = record*
//   record  = varint(length of body) body
//   body    = varint(id) u8(priority) varint(zigzag(when))
//             str(handle) str(function) str(unique) str(reducer) str(data)
//   str     = varint(length) bytes
//
// Varints are LEB128 (7 bits a byte, low bits first, at most 10 bytes). The id comes first so
// that reading the ids of a segment skips every payload. A record is self-delimiting, so a
// record can be copied from one segment to another byte for byte (compaction does).
//
// Decoding never trusts the blob: a truncated or inconsistent record is an error with the
// offset, never a read past the end.
//
// Thread-safety: pure functions and a reader over caller-owned bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/status.h"
#include "storage/job_store.h"

namespace roundhouse::storage::segment {

// Appends `rec` as one record to `out`.
void AppendRecord(const JobRecord& rec, std::string* out);

// Walks the records of one segment blob, in order.
class Reader {
 public:
  explicit Reader(std::string_view blob) : blob_(blob) {}

  bool done() const { return pos_ >= blob_.size(); }

  // The next record: its id and its bytes (length prefix included, ready to copy into another
  // segment). Error when the record is truncated or its id unreadable; the reader then stays
  // at the bad record.
  struct Entry {
    uint64_t id = 0;
    std::string_view bytes;
  };
  Result<Entry> Next();

 private:
  std::string_view blob_;
  size_t pos_ = 0;
};

// Decodes one record as returned in Reader::Entry::bytes.
Status DecodeRecord(std::string_view bytes, JobRecord* rec);

}  // namespace roundhouse::storage::segment
