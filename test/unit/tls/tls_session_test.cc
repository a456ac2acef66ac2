// server/tls: handshakes and records between tls::Session and an OpenSSL client over memory,
// the policy (versions, client certificates) and context replacement (SIGHUP reload).
#include "server/tls/tls_session.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <catch2/catch.hpp>
#include <string>

#include "server/tls/tls_context.h"
#include "test/unit/tls/test_certs.h"

namespace roundhouse::server::tls {
namespace {

using tls_test::CertDir;

std::shared_ptr<const Context> LoadOrFail(const ContextOptions& options) {
  auto loaded = Context::Load(options);
  INFO(loaded.status().message());
  REQUIRE(loaded.ok());
  return loaded.value();
}

ContextOptions Options(const CertDir& dir, ClientCertificates mode) {
  ContextOptions o;
  o.certificate_file = dir.path("server.pem");
  o.key_file = dir.path("server.key");
  o.ca_file = dir.path("ca.pem");
  o.client_certificates = mode;
  return o;
}

// An OpenSSL client over memory BIOs, the peer of a Session.
class Client {
 public:
  // Trusts `dir`'s CA. `cert` empty: no client certificate; else `cert_dir` (default `dir`)
  // holds CERT.pem and CERT.key. `max_version` 0: no cap.
  Client(const CertDir& dir, const std::string& cert, int max_version = 0,
         const CertDir* cert_dir = nullptr) {
    if (cert_dir == nullptr) cert_dir = &dir;
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, dir.path("ca.pem").c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (max_version != 0) {
      SSL_CTX_set_min_proto_version(ctx_, TLS1_VERSION);
      SSL_CTX_set_max_proto_version(ctx_, max_version);
      SSL_CTX_set_security_level(ctx_, 0);
    }
    if (!cert.empty()) {
      SSL_CTX_use_certificate_file(ctx_, cert_dir->path(cert + ".pem").c_str(), SSL_FILETYPE_PEM);
      SSL_CTX_use_PrivateKey_file(ctx_, cert_dir->path(cert + ".key").c_str(), SSL_FILETYPE_PEM);
    }
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    BIO_set_mem_eof_return(out_, -1);
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
  }
  ~Client() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }

  // Moves bytes both ways until neither side has anything to say; returns the server's
  // plaintext. Drives the client's handshake and writes `send` once it can.
  std::string Pump(Session& server, const std::string& send = "") {
    std::string received;
    std::string pending = send;
    for (int round = 0; round < 50; ++round) {
      ERR_clear_error();
      (void)SSL_do_handshake(ssl_);
      if (SSL_is_init_finished(ssl_) && !pending.empty()) {
        SSL_write(ssl_, pending.data(), static_cast<int>(pending.size()));
        pending.clear();
      }
      char buf[16384];
      int n = 0;
      bool moved = false;
      while ((n = BIO_read(out_, buf, sizeof(buf))) > 0) {
        server.PutCiphertext(std::string_view(buf, static_cast<size_t>(n)));
        moved = true;
      }
      ssize_t got = 0;
      while ((got = server.ReadPlaintext(buf, sizeof(buf))) > 0) {
        received.append(buf, static_cast<size_t>(got));
      }
      std::string cipher;
      if (server.TakeCiphertext(&cipher) > 0) {
        BIO_write(in_, cipher.data(), static_cast<int>(cipher.size()));
        moved = true;
      }
      while ((n = SSL_read(ssl_, buf, sizeof(buf))) > 0) {
        from_server_.append(buf, static_cast<size_t>(n));
      }
      if (!moved && pending.empty()) break;
    }
    return received;
  }

  bool established() const { return SSL_is_init_finished(ssl_) == 1; }
  const std::string& from_server() const { return from_server_; }

 private:
  SSL_CTX* ctx_;
  SSL* ssl_;
  BIO* in_;   // owned by ssl_
  BIO* out_;  // owned by ssl_
  std::string from_server_;
};

TEST_CASE("tls session completes a handshake and carries bytes both ways", "[tls]") {
  CertDir dir;
  auto context = LoadOrFail(Options(dir, ClientCertificates::kNone));
  Session server(*context);
  Client client(dir, "");
  const std::string echo_req("\0REQ\0\0\0\x10\0\0\0\x05hello", 17);
  CHECK(client.Pump(server, echo_req) == echo_req);
  CHECK(server.state() == Session::State::kEstablished);
  CHECK(client.established());
  CHECK(server.peer_identity().empty());
  CHECK(server.Description().rfind("TLSv1.3", 0) == 0);

  REQUIRE(server.WritePlaintext("reply bytes"));
  client.Pump(server);
  CHECK(client.from_server() == "reply bytes");
}

TEST_CASE("tls session holds plaintext written during the handshake", "[tls]") {
  CertDir dir;
  auto context = LoadOrFail(Options(dir, ClientCertificates::kNone));
  Session server(*context);
  REQUIRE(server.WritePlaintext("early"));
  CHECK(server.state() == Session::State::kHandshaking);
  Client client(dir, "");
  client.Pump(server, "x");
  CHECK(client.from_server() == "early");
}

TEST_CASE("tls session exposes a verified client certificate's common name", "[tls]") {
  CertDir dir("worker-7");
  for (ClientCertificates mode : {ClientCertificates::kOptional, ClientCertificates::kRequired}) {
    auto context = LoadOrFail(Options(dir, mode));
    Session server(*context);
    Client client(dir, "client");
    CHECK(client.Pump(server, "ping") == "ping");
    CHECK(server.state() == Session::State::kEstablished);
    CHECK(server.peer_identity() == "worker-7");
  }
}

TEST_CASE("tls session without a client certificate: optional passes, required fails", "[tls]") {
  CertDir dir;
  {
    auto context = LoadOrFail(Options(dir, ClientCertificates::kOptional));
    Session server(*context);
    Client client(dir, "");
    CHECK(client.Pump(server, "ping") == "ping");
    CHECK(server.peer_identity().empty());
  }
  {
    auto context = LoadOrFail(Options(dir, ClientCertificates::kRequired));
    Session server(*context);
    Client client(dir, "");
    CHECK(client.Pump(server, "ping").empty());
    CHECK(server.state() == Session::State::kFailed);
    CHECK(server.error().find("certificate") != std::string::npos);
  }
}

TEST_CASE("tls session refuses a client certificate from another CA", "[tls]") {
  CertDir dir;
  CertDir other("stranger");
  auto context = LoadOrFail(Options(dir, ClientCertificates::kOptional));
  Session server(*context);
  Client client(dir, "client", 0, &other);
  CHECK(client.Pump(server, "ping").empty());
  CHECK(server.state() == Session::State::kFailed);
  INFO(server.error());
  CHECK(server.error().find("certificate") != std::string::npos);
  CHECK(server.peer_identity().empty());
}

TEST_CASE("tls session refuses TLS 1.1", "[tls]") {
  CertDir dir;
  auto context = LoadOrFail(Options(dir, ClientCertificates::kNone));
  Session server(*context);
  Client client(dir, "", TLS1_1_VERSION);
  CHECK(client.Pump(server, "ping").empty());
  CHECK(server.state() == Session::State::kFailed);
  CHECK(server.error() == "unsupported protocol");
  CHECK(server.ReadPlaintext(nullptr, 0) == -1);
}

TEST_CASE("tls session fails on garbage and on a truncated record stream", "[tls]") {
  CertDir dir;
  auto context = LoadOrFail(Options(dir, ClientCertificates::kNone));
  {
    Session server(*context);
    REQUIRE(server.PutCiphertext(std::string_view("\x16\x03\x01\x00\x05garbage-after", 18)));
    char buf[64];
    CHECK(server.ReadPlaintext(buf, sizeof(buf)) == -1);
    CHECK(server.state() == Session::State::kFailed);
    std::string alert;
    CHECK(server.TakeCiphertext(&alert) > 0);  // the peer is told why
  }
  {
    Session server(*context);
    // Only the first bytes of a record header: nothing to decide yet.
    REQUIRE(server.PutCiphertext(std::string_view("\x16\x03", 2)));
    char buf[64];
    CHECK(server.ReadPlaintext(buf, sizeof(buf)) == 0);
    CHECK(server.state() == Session::State::kHandshaking);
  }
}

TEST_CASE("tls session keeps working after its context is replaced", "[tls]") {
  CertDir dir;
  auto context = LoadOrFail(Options(dir, ClientCertificates::kNone));
  Session server(*context);
  Client client(dir, "");
  CHECK(client.Pump(server, "one") == "one");
  context = LoadOrFail(Options(dir, ClientCertificates::kNone));  // the old one is freed
  CHECK(client.Pump(server, "two") == "two");
  Session second(*context);
  Client next(dir, "");
  CHECK(next.Pump(second, "three") == "three");
}

TEST_CASE("tls context load names the file that failed", "[tls]") {
  CertDir dir;
  ContextOptions o = Options(dir, ClientCertificates::kNone);
  o.certificate_file = dir.path("missing.pem");
  auto missing = Context::Load(o);
  REQUIRE(!missing.ok());
  CHECK(missing.status().message().find("missing.pem") != std::string::npos);

  o = Options(dir, ClientCertificates::kNone);
  o.key_file = dir.path("client.key");
  auto mismatch = Context::Load(o);
  REQUIRE(!mismatch.ok());
  INFO(mismatch.status().message());
  CHECK(mismatch.status().message().find("mismatch") != std::string::npos);

  o = Options(dir, ClientCertificates::kRequired);
  o.ca_file.clear();
  CHECK(!Context::Load(o).ok());
}

TEST_CASE("tls first byte tells a handshake from Gearman and admin text", "[tls]") {
  CHECK(StartsTls(0x16));
  CHECK(!StartsTls('\0'));
  CHECK(!StartsTls('s'));
}

}  // namespace
}  // namespace roundhouse::server::tls
