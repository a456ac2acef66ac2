#include "server/input_buffer.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <vector>

namespace roundhouse::server {

namespace {

// Standard blocks (kReadChunk bytes) not owned by any connection. Loop thread only (one pool per
// thread); bounded so a burst of many connections does not pin memory afterwards.
constexpr size_t kPoolMax = 64;
thread_local std::vector<std::unique_ptr<char[]>> block_pool;

std::unique_ptr<char[]> TakeBlock() {
  if (block_pool.empty()) return std::make_unique<char[]>(InputBuffer::kReadChunk);
  std::unique_ptr<char[]> block = std::move(block_pool.back());
  block_pool.pop_back();
  return block;
}

}  // namespace

InputBuffer::~InputBuffer() { ReleaseIfEmpty(); }

void InputBuffer::ReleaseIfEmpty() {
  if (begin_ != end_ || data_ == nullptr) return;
  if (capacity_ == kReadChunk && block_pool.size() < kPoolMax) block_pool.push_back(std::move(data_));
  data_.reset();
  capacity_ = 0;
  begin_ = end_ = 0;
}

char* InputBuffer::WritableSpace(size_t expected, size_t* space) {
  const size_t used = end_ - begin_;
  if (data_ == nullptr && expected <= kReadChunk) {
    data_ = TakeBlock();
    capacity_ = kReadChunk;
    begin_ = end_ = 0;
  }
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


}  // namespace roundhouse::server
