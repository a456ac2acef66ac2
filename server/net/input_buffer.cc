#include "server/net/input_buffer.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <vector>

namespace roundhouse::net {

namespace {

// Standard blocks (kReadChunk bytes) not owned by any buffer. Loop thread only (one pool per
// thread); bounded so a burst of many connections does not pin memory afterwards.
constexpr size_t kPoolMax = 64;
thread_local std::vector<std::unique_ptr<char[]>> block_pool;

std::unique_ptr<char[]> TakeBlock() {
  if (block_pool.empty()) return std::make_unique_for_overwrite<char[]>(InputBuffer::kReadChunk);
  std::unique_ptr<char[]> block = std::move(block_pool.back());
  block_pool.pop_back();
  return block;
}

void GiveBlock(std::unique_ptr<char[]> block) {
  if (block_pool.size() < kPoolMax) block_pool.push_back(std::move(block));
}

}  // namespace

InputBuffer::~InputBuffer() {
  if (capacity_ == kReadChunk) GiveBlock(std::move(data_));
}

void InputBuffer::Shrink() {
  if (data_ == nullptr) return;
  const size_t used = size();
  if (used > kSmallKeep || (used > 0 && capacity_ == used)) return;
  std::unique_ptr<char[]> old = std::move(data_);
  if (used > 0) {
    data_ = std::make_unique_for_overwrite<char[]>(used);
    std::memcpy(data_.get(), old.get() + begin_, used);
  }
  if (capacity_ == kReadChunk) GiveBlock(std::move(old));
  capacity_ = used;
  begin_ = 0;
  end_ = used;
}

void InputBuffer::Reserve(size_t want) {
  const size_t used = size();
  if (used == 0) begin_ = end_ = 0;  // the common case: everything was parsed, nothing to move
  if (capacity_ - end_ >= want) return;
  if (begin_ > 0 && capacity_ - used >= want) {
    // Compaction: only when the free space is split and the front part is enough to matter.
    std::memmove(data_.get(), data_.get() + begin_, used);
  } else {
    const size_t new_capacity = used + want;
    std::unique_ptr<char[]> grown = new_capacity == kReadChunk
                                        ? TakeBlock()
                                        : std::make_unique_for_overwrite<char[]>(new_capacity);
    if (used > 0) std::memcpy(grown.get(), data_.get() + begin_, used);
    if (capacity_ == kReadChunk) GiveBlock(std::move(data_));
    data_ = std::move(grown);
    capacity_ = new_capacity;
  }
  begin_ = 0;
  end_ = used;
}

char* InputBuffer::WritableSpace(size_t* space) {
  const size_t used = size();
  // A small remainder (or nothing) goes into a standard block; beyond that the space offered
  // equals what is buffered, so memory doubles only with arrived bytes.
  Reserve(used < kReadChunk ? kReadChunk - used : used);
  *space = capacity_ - end_;
  return data_.get() + end_;
}

void InputBuffer::Append(std::string_view bytes) {
  if (bytes.empty()) return;
  const size_t used = size();
  Reserve(std::max(bytes.size(), used < kReadChunk ? kReadChunk - used : used));
  std::memcpy(data_.get() + end_, bytes.data(), bytes.size());
  end_ += bytes.size();
}

void InputBuffer::Consume(size_t n) {
  assert(n <= size());
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

}  // namespace roundhouse::net
