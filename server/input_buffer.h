// A connection's receive buffer: bytes read from the socket and not yet parsed.
//
// The socket reads straight into WritableSpace() in large chunks; the parser looks at Data() and
// the connection drops what it handled with Consume(). Consuming only moves an offset, so views
// into Data() (the parsed frames) stay valid until the next WritableSpace() call, which is the
// only place bytes move (compaction, rarely) or the block is reallocated.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

namespace roundhouse::server {

class InputBuffer {
 public:
  // Size of one read. Larger reads mean fewer syscalls for pipelined peers.
  static constexpr size_t kReadChunk = size_t{64} * 1024;

  InputBuffer() = default;
  InputBuffer(const InputBuffer&) = delete;
  InputBuffer& operator=(const InputBuffer&) = delete;

  // Free space at the end for the next read: at least kReadChunk bytes, and at least
  // `expected` - size() when a frame of `expected` bytes is known to be coming (so a big packet
  // arrives in few reads). Invalidates views into Data().
  char* WritableSpace(size_t expected, size_t* space);

  // `n` bytes were written into the space WritableSpace() returned.
  void Commit(size_t n) { end_ += n; }

  std::string_view Data() const { return {data_.get() + begin_, end_ - begin_}; }
  size_t size() const { return end_ - begin_; }
  void Consume(size_t n);

  // Called after each read was parsed: an empty buffer gives its block back (a standard block
  // to a small per-thread pool that the next read of any connection takes it from, a larger one
  // to the allocator), so an idle connection holds no receive memory while busy ones reuse
  // blocks without allocating.
  void ReleaseIfEmpty();

  ~InputBuffer();

 private:
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  // Unparsed bytes are data_[begin_, end_).
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace roundhouse::server
