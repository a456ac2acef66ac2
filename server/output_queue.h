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
  template <typename Encode>
  bool Fill(uint64_t ticket, Encode&& encode) {
    for (size_t i = 0; i < held_.size(); ++i) {
      Held& held = held_[i];
      if (held.ticket != ticket || held.filled) continue;
      if (i == 0) {
        encode(&ready_);
        ready_.append(held.after);
        held_.pop_front();
      } else {
        encode(&held.reply);
        held.filled = true;
      }
      Release();
      return true;
    }
    return false;
  }

  // True when a placeholder is still unfilled.
  bool HasPlaceholder() const { return !held_.empty(); }

  // Bytes that may be written now (before the first unfilled placeholder).
  bool HasReady() const { return !ready_.empty(); }
  std::string& ready() { return ready_; }

  // Moves the writable bytes into `out` (which must be empty) without copying: the two strings
  // swap, so `out`'s old capacity is reused for later replies.
  void TakeReady(std::string* out);

  // Bytes queued and not yet taken, placeholders' held bytes included (back-pressure).
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

  // Invariant: held_.empty() || !held_.front().filled (a filled head is released at once).
  std::string ready_;
  std::deque<Held> held_;
};

}  // namespace roundhouse::server
