// A stream's receive buffer: bytes read from the socket (or decrypted from it) and not yet
// parsed.
//
// The socket reads straight into WritableSpace(); the parser looks at Data() and the owner drops
// what it handled with Consume(). Consuming only moves an offset, so views into Data() (the
// parsed frames) stay valid until the next WritableSpace(), Append() or Shrink() call, the only
// places bytes move or the memory changes.
//
// Memory follows bytes that arrived, never a length the peer declared: the free space offered
// for a read is one standard block (kReadChunk) or, once more than that is buffered, as much as
// is buffered (so a large frame costs at most about twice its arrived bytes, in O(log n)
// reallocations). Standard blocks come from and go back to a small per-thread pool; Shrink()
// (called when the socket has nothing more for now) gives the block back when the buffer is
// empty and moves a remainder of at most kSmallKeep bytes to a right-sized allocation, so an
// idle connection holds nothing and one with a few unparsed bytes holds a few bytes.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

namespace roundhouse::net {

class InputBuffer {
 public:
  // Size of one standard read block. Larger reads mean fewer syscalls for pipelined peers.
  static constexpr size_t kReadChunk = size_t{64} * 1024;
  // Remainders up to this size leave the standard block in Shrink().
  static constexpr size_t kSmallKeep = 4096;

  InputBuffer() = default;
  InputBuffer(const InputBuffer&) = delete;
  InputBuffer& operator=(const InputBuffer&) = delete;
  ~InputBuffer();

  // Free space at the end for the next read (see above for its size). Invalidates views.
  char* WritableSpace(size_t* space);
  // `n` bytes were written into the space WritableSpace() returned.
  void Commit(size_t n) { end_ += n; }
  // Copies `bytes` in at the end (a decrypting layer's output). Invalidates views.
  void Append(std::string_view bytes);

  std::string_view Data() const { return {data_.get() + begin_, end_ - begin_}; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  void Consume(size_t n);

  // Gives memory back while the peer is quiet (see above). Invalidates views.
  void Shrink();
  // Bytes of memory held (for tests and accounting).
  size_t capacity() const { return capacity_; }

 private:
  // Makes room for at least `want` more bytes at the end, moving the unparsed bytes to the front.
  void Reserve(size_t want);

  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  // Unparsed bytes are data_[begin_, end_).
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace roundhouse::net
