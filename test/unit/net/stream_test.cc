#include "server/net/stream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

namespace roundhouse::net {
namespace {

// A connected pair over loopback: `peer` is a plain blocking socket the test drives, the other
// end is opened in the stream.
struct Pair {
  int peer = -1;
  int server = -1;
  Pair() {
    const int lst = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(lst, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
    REQUIRE(listen(lst, 1) == 0);
    socklen_t len = sizeof(sa);
    getsockname(lst, reinterpret_cast<sockaddr*>(&sa), &len);
    peer = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(connect(peer, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
    server = accept(lst, nullptr, nullptr);
    REQUIRE(server >= 0);
    close(lst);
  }
  ~Pair() {
    if (peer >= 0) close(peer);
  }
};

struct Recorder : StreamHandler {
  std::string read;
  int reads = 0, eofs = 0, errors = 0, drained = 0, closed = 0;
  void OnStreamRead(Stream& s) override {
    ++reads;
    read.append(s.input().Data());
    s.input().Consume(s.input().size());
  }
  void OnStreamEof(Stream&) override { ++eofs; }
  void OnStreamError(Stream&, int) override { ++errors; }
  void OnStreamDrained(Stream&) override { ++drained; }
  void OnStreamClosed(Stream&) override { ++closed; }
};

void Spin(uv_loop_t* loop, int turns = 20) {
  for (int i = 0; i < turns; ++i) uv_run(loop, UV_RUN_NOWAIT);
}

TEST_CASE("stream: reads arrive in input(), EOF once, close-then-free") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Pair pair;
  Recorder rec;
  {
    Stream stream(&loop, rec);
    REQUIRE(stream.Open(pair.server) == 0);
    REQUIRE(stream.StartReading() == 0);
    REQUIRE(write(pair.peer, "abc", 3) == 3);
    Spin(&loop);
    CHECK(rec.read == "abc");
    shutdown(pair.peer, SHUT_WR);
    Spin(&loop);
    CHECK(rec.eofs == 1);
    CHECK_FALSE(stream.reading());
    stream.Close();
    CHECK(rec.closed == 0);  // only from the close callback
    Spin(&loop);
    CHECK(rec.closed == 1);
    CHECK(rec.errors == 0);
  }
  uv_loop_close(&loop);
}

TEST_CASE("stream: one queue with a hard cap, accounted, drained once the peer reads") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Pair pair;
  Recorder rec;
  size_t total = 0;
  {
    Stream stream(&loop, rec);
    REQUIRE(stream.Open(pair.server) == 0);
    stream.set_queued_total(&total);
    const size_t cap = size_t{32} * 1024 * 1024;
    stream.set_max_queued(cap);
    // More than the socket buffers take: the rest waits in the stream.
    std::string big(size_t{16} * 1024 * 1024, 'x');
    REQUIRE(stream.Write(&big));
    CHECK(big.empty());
    CHECK(stream.write_in_flight());
    CHECK(stream.queued_bytes() > 0);
    CHECK(total == stream.queued_bytes());
    std::string more(size_t{8} * 1024 * 1024, 'y');
    REQUIRE(stream.Write(&more));
    CHECK(total == stream.queued_bytes());
    // Past the cap nothing is queued and the caller hears it.
    std::string over(cap, 'z');
    CHECK_FALSE(stream.Write(&over));
    CHECK(over.size() == cap);
    // The peer reads everything: the queue drains, OnStreamDrained once.
    size_t got = 0;
    char buf[65536];
    fcntl(pair.peer, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 100000 && got < size_t{24} * 1024 * 1024; ++i) {
      const ssize_t n = read(pair.peer, buf, sizeof(buf));
      if (n > 0) got += static_cast<size_t>(n);
      uv_run(&loop, UV_RUN_NOWAIT);
    }
    Spin(&loop);
    CHECK(got == size_t{24} * 1024 * 1024);
    CHECK(stream.queued_bytes() == 0);
    CHECK(total == 0);
    CHECK(rec.drained == 1);
    // A queue dropped by Close() leaves the shared total.
    std::string again(size_t{16} * 1024 * 1024, 'w');
    REQUIRE(stream.Write(&again));
    CHECK(total > 0);
    stream.Close();
    CHECK(total == 0);
    Spin(&loop);
    CHECK(rec.closed == 1);
    CHECK(rec.drained == 1);  // nothing after Close() but the close callback
  }
  uv_loop_close(&loop);
}

}  // namespace
}  // namespace roundhouse::net
