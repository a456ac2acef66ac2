// The bytes a connection still owes its peer, in reply order (doc/protocol.md §1.3).
//
// One FIFO per connection. Most of the time everything queued is writable at once and lives in
// one contiguous string (`ready`). A reply that waits for a durable write (a SUBMIT_*_BG the
// store has not committed yet) is a *placeholder*: it and everything queued after it are held
// back until Fill() supplies the reply, so a peer never sees replies out of request order.
//
// Writing is the connection's business: it takes the ready bytes with TakeReady() (at most one
// write in flight) and gives the buffer back with ReturnBuffer() to keep its capacity. Pure data
// structure: no libuv, no allocation per append beyond amortised string growth.
//
// Thread-safety: loop thread only (like its connection).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace roundhouse::server {

class OutputQueue {
 public:
  OutputQueue() = default;
  OutputQueue(const OutputQueue&) = delete;
  OutputQueue& operator=(const OutputQueue&) = delete;

  // Where the next reply goes: append bytes to the returned string. Valid until the next
  // non-const call. Replies appended here stay behind every earlier placeholder.
  std::string* Tail();

  // Reserves the reply slot for submit `ticket`; later appends wait behind it.
  void AddPlaceholder(uint64_t ticket);

  // Fills the placeholder for `ticket`: `encode(std::string*)` appends the reply bytes. When the
  // placeholder is the oldest one (the usual case) they go straight to the ready bytes, followed
  // by what was held behind it. Unknown tickets are ignored (returns false, encode not called).
  // O(1): placeholders are added with consecutive tickets (the broker issues them so), so
  // `ticket` is at index ticket - front().ticket.
  template <typename Encode>
  bool Fill(uint64_t ticket, Encode&& encode) {
    if (held_.empty() || ticket < held_.front().ticket) return false;
    const uint64_t i = ticket - held_.front().ticket;
    if (i >= held_.size()) return false;
    Held& held = held_[static_cast<size_t>(i)];
    if (held.ticket != ticket || held.filled) return false;
    if (i == 0) {
      encode(&ready_);
      ready_.append(held.after);
      PopHead();
    } else {
      const size_t before = held.reply.size();
      encode(&held.reply);
      held_bytes_ += held.reply.size() - before;
      held.filled = true;
    }
    Release();
    return true;
  }

  // True when a placeholder is still unfilled.
  bool HasPlaceholder() const { return !held_.empty(); }

  // Bytes that may be written now (before the first unfilled placeholder).
  bool HasReady() const { return !ready_.empty(); }
  std::string& ready() { return ready_; }

  // Moves the writable bytes into `out` (which must be empty) without copying: the two strings
  // swap, so `out`'s old capacity is reused for later replies.
  void TakeReady(std::string* out);

  // Bytes queued and not yet taken, placeholders' held bytes included (back-pressure). O(1):
  // the connection asks before every frame it handles.
  size_t pending_bytes() const;

  // Drops everything (the connection is closing).
  void Clear();

 private:
  // A held segment: the filled-or-not reply for `ticket`, then the bytes queued after it.
  struct Held {
    uint64_t ticket = 0;
    bool filled = false;
    std::string reply;
    std::string after;
  };

  // Moves filled segments at the head of held_ into ready_.
  void Release();
  // Drops the head segment (its bytes already moved to ready_) from held_ and held_bytes_.
  void PopHead();

  // Invariant: held_.empty() || !held_.front().filled (a filled head is released at once).
  std::string ready_;
  std::deque<Held> held_;
  // Bytes in held_ except the last segment's `after`, which Tail() hands out for appending
  // (counted by pending_bytes() directly); an `after` is added here when a later placeholder
  // closes it.
  size_t held_bytes_ = 0;
};

}  // namespace roundhouse::server
