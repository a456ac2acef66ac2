#include "server/input_buffer.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace roundhouse::server {

char* InputBuffer::WritableSpace(size_t expected, size_t* space) {
  const size_t used = end_ - begin_;
  if (used == 0) begin_ = end_ = 0;  // the common case: everything was parsed, nothing to move
  const size_t want = std::max(kReadChunk, expected > used ? expected - used : 0);
  if (capacity_ - end_ < want) {
    if (begin_ > 0 && capacity_ - used >= want) {
      // Compaction: only when the free space is split and the front part is enough to matter.
      std::memmove(data_.get(), data_.get() + begin_, used);
    } else {
      const size_t new_capacity = std::max(used + want, capacity_ * 2);
      auto grown = std::make_unique<char[]>(new_capacity);
      if (used > 0) std::memcpy(grown.get(), data_.get() + begin_, used);
      data_ = std::move(grown);
      capacity_ = new_capacity;
    }
    begin_ = 0;
    end_ = used;
  }
  *space = capacity_ - end_;
  return data_.get() + end_;
}

void InputBuffer::Consume(size_t n) {
  assert(n <= end_ - begin_);
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

void InputBuffer::ShrinkIfIdle() {
  if (begin_ == end_ && capacity_ > 4 * kReadChunk) {
    data_.reset();
    capacity_ = 0;
    begin_ = end_ = 0;
  }
}

}  // namespace roundhouse::server
