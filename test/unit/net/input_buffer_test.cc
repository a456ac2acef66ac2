#include "server/net/input_buffer.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

namespace roundhouse::net {
namespace {

// Simulates one read of `bytes` into the buffer.
void Read(InputBuffer& in, const std::string& bytes) {
  size_t offset = 0;
  while (offset < bytes.size()) {
    size_t space = 0;
    char* p = in.WritableSpace(&space);
    REQUIRE(space > 0);
    const size_t n = std::min(space, bytes.size() - offset);
    std::memcpy(p, bytes.data() + offset, n);
    in.Commit(n);
    offset += n;
  }
}

TEST_CASE("input buffer: a declared length costs nothing, arrived bytes do") {
  InputBuffer in;
  // A 12-byte header declaring a 64 MiB body, then one byte: the buffer never sees the length.
  Read(in, std::string("\0REQ\0\0\0\x07\x04\0\0\0", 12) + "x");
  CHECK(in.size() == 13);
  CHECK(in.capacity() == InputBuffer::kReadChunk);
  // The socket has nothing more: the remainder leaves the standard block.
  in.Shrink();
  CHECK(in.size() == 13);
  CHECK(in.capacity() == 13);
  CHECK(in.Data().substr(0, 4) == std::string_view("\0REQ", 4));
}

TEST_CASE("input buffer: growth follows arrived bytes, at most about twice") {
  InputBuffer in;
  const std::string chunk(10'000, 'a');
  size_t arrived = 0;
  for (int i = 0; i < 300; ++i) {
    Read(in, chunk);
    arrived += chunk.size();
    CHECK(in.size() == arrived);
    CHECK(in.capacity() <= 2 * arrived + InputBuffer::kReadChunk);
  }
  in.Consume(in.size());
  in.Shrink();
  CHECK(in.capacity() == 0);
}

TEST_CASE("input buffer: consumed bytes and appended bytes keep their order") {
  InputBuffer in;
  Read(in, "hello ");
  in.Consume(2);
  in.Append("world");
  CHECK(in.Data() == "llo world");
  in.Shrink();
  CHECK(in.Data() == "llo world");
  Read(in, "!");
  CHECK(in.Data() == "llo world!");
  in.Consume(in.size());
  CHECK(in.empty());
}

TEST_CASE("input buffer: a large remainder keeps its block until consumed") {
  InputBuffer in;
  Read(in, std::string(InputBuffer::kSmallKeep + 1, 'b'));
  in.Shrink();
  CHECK(in.capacity() == InputBuffer::kReadChunk);
  in.Consume(InputBuffer::kSmallKeep);
  in.Shrink();
  CHECK(in.capacity() == 1);
  CHECK(in.Data() == "b");
}

}  // namespace
}  // namespace roundhouse::net
