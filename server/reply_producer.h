// A large reply produced a slice at a time (admin `status`, `workers`, `show jobs`, /metrics,
// /api/*: doc/protocol.md §4.5). A listing of 200k functions is megabytes; building it in one
// loop turn stalls every other peer for hundreds of milliseconds and holds the whole reply in
// memory while a slow reader takes it. Instead the connection asks its producer for the next
// slice only when its output has drained (at most once per loop turn), so a reply in flight
// costs O(slice) memory and each turn O(slice) work, whatever the listing's size.
//
// A producer resumes by key (a name, a worker's fd and serial, or a broker-maintained job
// cursor), never by an iterator or a raw pointer kept across turns: entries added or removed
// between two slices cannot make it dangle. Consistency (documented in doc/protocol.md §4.5):
// every entry that exists throughout the listing appears exactly once; entries added or
// removed meanwhile may or may not appear; each line is a consistent view of its entry at the
// moment its slice was produced.
//
// Ownership: the connection that streams the reply owns its producer and destroys it when the
// reply is complete or the connection closes (a peer that disconnects mid-reply frees it at
// once).
//
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>
#include <string>

namespace roundhouse::server {

// Bytes a producer appends per slice (about: it stops at the first entry boundary past it).
inline constexpr size_t kReplySliceBytes = 64 * 1024;
// Entries a producer may look at per slice even if they produce nothing (filters), so one
// slice is bounded work however few entries match.
inline constexpr size_t kReplySliceEntries = 4096;

class ReplyProducer {
 public:
  virtual ~ReplyProducer() = default;
  // Appends the next slice (about `budget` bytes, whole entries) to *out. True once the reply
  // is complete (the last slice appended); never called again after that.
  virtual bool Produce(std::string* out, size_t budget) = 0;
};

}  // namespace roundhouse::server
