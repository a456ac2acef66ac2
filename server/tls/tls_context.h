// A TLS server context: the certificate chain, its private key, the CA file that client
// certificates are verified against, and the protocol policy every TLS session of the server
// shares (doc/protocol.md §5.5).
//
// Policy: TLS 1.2 and 1.3 only; TLS 1.2 with forward-secret AEAD suites only (ECDHE/DHE with
// AES-GCM or ChaCha20-Poly1305), server preference; no renegotiation, no compression.
// Client certificates: kNone (gearmand's behaviour: none asked for), kOptional (asked for; one
// that is sent must verify against the CA file) or kRequired (a handshake without one fails).
//
// Lifetime: a Context is immutable once loaded. Sessions are built from the current one; each
// session's SSL object holds its own reference to the underlying SSL_CTX, so replacing the
// server's Context on SIGHUP (a new Load) never disturbs established sessions, and new
// handshakes use the new certificate.
//
// Thread-safety: Load may run on any thread; a loaded Context may be shared read-only.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace roundhouse::server::tls {

enum class ClientCertificates { kNone, kOptional, kRequired };

// "none", "optional", "required"; false if `name` is none of them.
bool ParseClientCertificates(const std::string& name, ClientCertificates* out);
const char* ClientCertificatesName(ClientCertificates mode);

struct ContextOptions {
  std::string certificate_file;  // PEM: the server certificate, then any intermediates
  std::string key_file;          // PEM private key matching the certificate
  // PEM CA certificates client certificates are verified against. Read when it is set; it must
  // be set (and readable) unless client_certificates is kNone.
  std::string ca_file;
  ClientCertificates client_certificates = ClientCertificates::kNone;
};

class Context {
 public:
  // Reads the files and checks that the key matches the certificate. Errors name the file and
  // OpenSSL's reason.
  static Result<std::shared_ptr<const Context>> Load(const ContextOptions& options);

  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // For the log after a (re)load: "subject CN=..., expires <date>".
  const std::string& description() const { return description_; }
  ClientCertificates client_certificates() const { return client_certificates_; }

  // The OpenSSL context; borrowed, valid while this Context lives (sessions up-reference it).
  SSL_CTX* native() const { return ctx_; }

 private:
  Context(SSL_CTX* ctx, std::string description, ClientCertificates mode)
      : ctx_(ctx), description_(std::move(description)), client_certificates_(mode) {}

  SSL_CTX* ctx_;  // owned: SSL_CTX_free in the destructor
  std::string description_;
  ClientCertificates client_certificates_;
};

}  // namespace roundhouse::server::tls
