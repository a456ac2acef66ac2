// libFuzzer target for the TLS read path (server/tls/tls_session.h): arbitrary bytes arrive as
// a client's ciphertext, in two socket reads split at a point the input picks (so records and
// handshake messages are cut anywhere), and are driven through PutCiphertext / ReadPlaintext /
// TakeCiphertext / WritePlaintext exactly as the stream does. Nothing may crash, leak or read
// out of bounds; ReadPlaintext never returns more than asked; -1 means kFailed and a failed
// session stays failed; plaintext only comes out of an established session.
//
// Input: byte 0 picks the client-certificate policy, bytes 1-2 (little endian) the cut point,
// the rest is the ciphertext. Seeds (seeds/tls, make_tls_seeds.py): real ClientHellos for
// TLS 1.3 and 1.2, a TLS 1.1 one, truncated and corrupted ones.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "server/tls/tls_context.h"
#include "server/tls/tls_session.h"
#include "test/unit/tls/test_certs.h"

namespace roundhouse::server::tls {
namespace {

void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_tls invariant failed: %s\n", what);
    std::abort();
  }
}

struct Contexts {
  Contexts() {
    tls_test::CertDir dir;
    for (ClientCertificates mode : {ClientCertificates::kNone, ClientCertificates::kOptional,
                                    ClientCertificates::kRequired}) {
      ContextOptions o;
      o.certificate_file = dir.path("server.pem");
      o.key_file = dir.path("server.key");
      o.ca_file = dir.path("ca.pem");
      o.client_certificates = mode;
      auto loaded = Context::Load(o);
      Require(loaded.ok(), "test context loads");
      by_mode[static_cast<int>(mode)] = loaded.value();
    }
  }
  std::shared_ptr<const Context> by_mode[3];
};

// Drains the session as the stream does after each read; returns false once it failed.
bool Drain(Session& session, std::string* wire) {
  char plain[4096];
  for (;;) {
    const ssize_t n = session.ReadPlaintext(plain, sizeof(plain));
    Require(n <= static_cast<ssize_t>(sizeof(plain)), "ReadPlaintext overran its buffer");
    if (n > 0) {
      Require(session.state() == Session::State::kEstablished, "plaintext before the handshake");
      continue;
    }
    session.TakeCiphertext(wire);
    if (n < 0) {
      Require(session.state() == Session::State::kFailed, "-1 without kFailed");
      return false;
    }
    return true;
  }
}

}  // namespace
}  // namespace roundhouse::server::tls

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace roundhouse::server::tls;  // NOLINT(google-build-using-namespace)
  static Contexts* contexts = new Contexts();
  if (size < 3) return 0;
  const Context& context = *contexts->by_mode[data[0] % 3];
  size_t cut = static_cast<size_t>(data[1]) | (static_cast<size_t>(data[2]) << 8);
  std::string_view stream(reinterpret_cast<const char*>(data + 3), size - 3);
  if (cut > stream.size()) cut = stream.size();

  Session session(context);
  std::string wire;
  bool alive = session.PutCiphertext(stream.substr(0, cut)) && Drain(session, &wire);
  if (alive) alive = session.PutCiphertext(stream.substr(cut)) && Drain(session, &wire);
  if (!alive) {
    Require(
        session.state() == Session::State::kFailed || session.state() == Session::State::kClosed,
        "a dead session is failed or closed");
    Require(!session.WritePlaintext("late"), "a failed session accepted plaintext");
    Require(!session.PutCiphertext("x") || session.state() == Session::State::kClosed,
            "a failed session accepted ciphertext");
  } else {
    Require(session.WritePlaintext("\0RES\0\0\0\x11\0\0\0\x05hello"), "a live session refused");
    session.SendCloseNotify();
    session.TakeCiphertext(&wire);
  }
  return 0;
}
