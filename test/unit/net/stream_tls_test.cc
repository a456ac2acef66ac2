// net::Stream's TLS seam (OfferTls): the first byte decides TLS or plain; a TLS stream hands
// plaintext to input() and encrypts Write(); require_tls refuses plain text. A real loopback
// connection, an OpenSSL client on the test's end, certificates made by the test.
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "server/net/stream.h"
#include "server/tls/tls_context.h"
#include "test/unit/tls/test_certs.h"

namespace roundhouse::net {
namespace {

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
    fcntl(peer, F_SETFL, fcntl(peer, F_GETFL) | O_NONBLOCK);
  }
  ~Pair() {
    if (peer >= 0) close(peer);
  }
};

struct Recorder : StreamHandler {
  std::string read;
  int errors = 0, established = 0, closed = 0;
  void OnStreamRead(Stream& s) override {
    read.append(s.input().Data());
    s.input().Consume(s.input().size());
  }
  void OnStreamEof(Stream&) override {}
  void OnStreamError(Stream& s, int) override {
    ++errors;
    s.Close();
  }
  void OnStreamDrained(Stream&) override {}
  void OnStreamTlsEstablished(Stream&) override { ++established; }
  void OnStreamClosed(Stream&) override { ++closed; }
};

void Spin(uv_loop_t* loop, int turns = 20) {
  for (int i = 0; i < turns; ++i) uv_run(loop, UV_RUN_NOWAIT);
}

std::shared_ptr<const server::tls::Context> ServerContext(const tls_test::CertDir& certs) {
  server::tls::ContextOptions o;
  o.certificate_file = certs.path("server.pem");
  o.key_file = certs.path("server.key");
  o.ca_file = certs.path("ca.pem");
  o.client_certificates = server::tls::ClientCertificates::kOptional;
  auto loaded = server::tls::Context::Load(o);
  REQUIRE(loaded.ok());
  return loaded.value();
}

TEST_CASE("stream: a handshake record first makes a TLS stream with the client's identity") {
  tls_test::CertDir certs("peer-9");
  uv_loop_t loop;
  uv_loop_init(&loop);
  Pair pair;
  Recorder rec;
  SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(client_ctx, certs.path("ca.pem").c_str(), nullptr);
  SSL_CTX_use_certificate_file(client_ctx, certs.path("client.pem").c_str(), SSL_FILETYPE_PEM);
  SSL_CTX_use_PrivateKey_file(client_ctx, certs.path("client.key").c_str(), SSL_FILETYPE_PEM);
  SSL* client = SSL_new(client_ctx);
  SSL_set_fd(client, pair.peer);
  SSL_set_connect_state(client);
  {
    Stream stream(&loop, rec);
    REQUIRE(stream.Open(pair.server) == 0);
    stream.OfferTls(ServerContext(certs), /*require_tls=*/false);
    REQUIRE(stream.StartReading() == 0);
    for (int i = 0; i < 200 && SSL_do_handshake(client) != 1; ++i) Spin(&loop, 2);
    REQUIRE(SSL_is_init_finished(client));
    REQUIRE(SSL_write(client, "\0REQ", 4) == 4);
    for (int i = 0; i < 50 && rec.read.size() < 4; ++i) Spin(&loop, 2);
    CHECK(rec.read == std::string("\0REQ", 4));
    CHECK(stream.encrypted());
    CHECK(rec.established == 1);
    CHECK(stream.peer_identity() == "peer-9");

    std::string reply = "encrypted reply";
    REQUIRE(stream.Write(&reply));
    char buf[64];
    int n = -1;
    for (int i = 0; i < 200 && n <= 0; ++i) {
      Spin(&loop, 2);
      n = SSL_read(client, buf, sizeof(buf));
    }
    REQUIRE(n > 0);
    CHECK(std::string(buf, static_cast<size_t>(n)) == "encrypted reply");
    CHECK(rec.errors == 0);
    stream.Close();
    Spin(&loop);
  }
  SSL_free(client);
  SSL_CTX_free(client_ctx);
  uv_loop_close(&loop);
}

TEST_CASE("stream: TLS offered, a plain first byte stays plain unless TLS is required") {
  tls_test::CertDir certs;
  for (bool require : {false, true}) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    Pair pair;
    Recorder rec;
    {
      Stream stream(&loop, rec);
      REQUIRE(stream.Open(pair.server) == 0);
      stream.OfferTls(ServerContext(certs), require);
      REQUIRE(stream.StartReading() == 0);
      REQUIRE(write(pair.peer, "version\n", 8) == 8);
      Spin(&loop);
      CHECK_FALSE(stream.encrypted());
      if (require) {
        CHECK(rec.read.empty());
        CHECK(rec.errors == 1);
      } else {
        CHECK(rec.read == "version\n");
        CHECK(rec.errors == 0);
        stream.Close();
      }
      Spin(&loop);
      CHECK(rec.closed == 1);
    }
    uv_loop_close(&loop);
  }
}

TEST_CASE("stream: a handshake that fails is refused with an error, nothing delivered") {
  tls_test::CertDir certs;
  uv_loop_t loop;
  uv_loop_init(&loop);
  Pair pair;
  Recorder rec;
  {
    Stream stream(&loop, rec);
    REQUIRE(stream.Open(pair.server) == 0);
    stream.OfferTls(ServerContext(certs), false);
    REQUIRE(stream.StartReading() == 0);
    REQUIRE(write(pair.peer, "\x16\x03\x01\x00\x05garbage!!", 15) == 15);
    Spin(&loop);
    CHECK(rec.read.empty());
    CHECK(rec.errors == 1);
    CHECK(rec.established == 0);
    Spin(&loop);
    CHECK(rec.closed == 1);
  }
  uv_loop_close(&loop);
}

}  // namespace
}  // namespace roundhouse::net
