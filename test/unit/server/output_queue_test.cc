// OutputQueue: replies leave in request order whatever order the store finishes them in, and
// pending_bytes() (asked before every frame, so kept O(1)) always equals the bytes queued.
#include "server/output_queue.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace roundhouse::server {
namespace {

TEST_CASE("placeholders hold later replies back until they are filled", "[output_queue]") {
  OutputQueue q;
  q.Tail()->append("a");
  q.AddPlaceholder(1);
  q.Tail()->append("b");
  q.AddPlaceholder(2);
  q.Tail()->append("c");
  CHECK(q.ready() == "a");
  CHECK(q.pending_bytes() == 3);
  CHECK(q.Fill(2, [](std::string* out) { out->append("R2"); }));
  CHECK(q.ready() == "a");  // ticket 1 still owed
  CHECK(q.pending_bytes() == 5);
  CHECK_FALSE(q.Fill(2, [](std::string* out) { out->append("again"); }));
  CHECK_FALSE(q.Fill(7, [](std::string* out) { out->append("unknown"); }));
  CHECK(q.Fill(1, [](std::string* out) { out->append("R1"); }));
  CHECK(q.ready() == "aR1bR2c");
  CHECK_FALSE(q.HasPlaceholder());
  CHECK(q.pending_bytes() == 7);
}

TEST_CASE("pending_bytes matches the queued bytes through any fill order", "[output_queue]") {
  std::mt19937 rng(12);
  for (int round = 0; round < 50; ++round) {
    OutputQueue q;
    std::string expect;  // everything in request order, replies as "<ticket>"
    std::vector<uint64_t> open;
    uint64_t next = 1;
    size_t taken = 0;
    std::string sink;
    for (int step = 0; step < 400; ++step) {
      const int op = static_cast<int>(rng() % 4);
      if (op == 0) {
        const std::string bytes(rng() % 5, 'x');
        q.Tail()->append(bytes);
        expect += bytes;
      } else if (op == 1) {
        q.AddPlaceholder(next);
        expect += "<" + std::to_string(next) + ">";
        open.push_back(next++);
      } else if (op == 2 && !open.empty()) {
        const size_t k = rng() % open.size();
        const uint64_t t = open[k];
        open.erase(open.begin() + static_cast<std::ptrdiff_t>(k));
        REQUIRE(q.Fill(t, [t](std::string* out) { *out += "<" + std::to_string(t) + ">"; }));
      } else if (op == 3) {
        std::string out;
        q.TakeReady(&out);
        sink += out;
        taken += out.size();
      }
      // Brute force: bytes of `expect` not yet taken, less the unfilled replies' text.
      size_t unfilled = 0;
      for (uint64_t t : open) unfilled += std::to_string(t).size() + 2;
      REQUIRE(q.pending_bytes() == expect.size() - taken - unfilled);
    }
    for (uint64_t t : open) {
      REQUIRE(q.Fill(t, [t](std::string* out) { *out += "<" + std::to_string(t) + ">"; }));
    }
    std::string out;
    q.TakeReady(&out);
    sink += out;
    CHECK(sink == expect);
    CHECK(q.pending_bytes() == 0);
  }
}

}  // namespace
}  // namespace roundhouse::server
