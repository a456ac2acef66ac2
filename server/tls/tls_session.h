// One TLS session on the server side of a stream, over memory BIOs: the owner of the socket
// moves ciphertext in both directions and never hands the socket to OpenSSL, so the handshake is
// non-blocking and runs on the loop thread like every other read.
//
//   socket bytes -> PutCiphertext() -> ReadPlaintext() -> the stream's parser
//   replies      -> WritePlaintext() -> TakeCiphertext() -> socket
//
// After every PutCiphertext / ReadPlaintext / WritePlaintext / SendCloseNotify the owner calls
// TakeCiphertext and writes what it got (handshake messages, session tickets, alerts and
// records), also when the call failed: a fatal error leaves the alert that tells the peer why.
//
// Life cycle (one enum, state()):
//   kHandshaking --handshake completes--> kEstablished --close_notify received--> kClosed
//   kHandshaking / kEstablished --bad record, failed handshake, protocol error--> kFailed
// kClosed and kFailed are final. Plaintext written during the handshake is held and encrypted
// as soon as the session is established.
//
// Bounds: PutCiphertext copies into the read BIO; the owner puts one socket read at a time and
// drains ReadPlaintext until it returns 0 before reading the socket again, so the BIO holds at
// most one read's worth of ciphertext. The write BIO holds the ciphertext of what the owner
// wrote and has not taken yet.
//
// Thread-safety: one thread at a time (the loop thread).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "server/tls/tls_context.h"

typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace roundhouse::server::tls {

// The first byte of a TLS connection is a handshake record (content type 22). A Gearman binary
// packet starts with '\0' and an admin line with a printable byte, so one byte tells them apart
// (doc/protocol.md §5.5).
inline constexpr unsigned char kHandshakeRecordType = 0x16;
inline bool StartsTls(unsigned char first_byte) { return first_byte == kHandshakeRecordType; }

class Session {
 public:
  enum class State { kHandshaking, kEstablished, kClosed, kFailed };

  // `context` is only read here: the session keeps its own reference to the OpenSSL context.
  explicit Session(const Context& context);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Ciphertext read from the socket. False once the session has failed.
  bool PutCiphertext(std::string_view ciphertext);

  // Decrypts into dst[0, capacity). Returns the number of plaintext bytes (> 0); 0 when more
  // ciphertext is needed, or the peer closed (state() kClosed); -1 when the session failed
  // (error() says why). Advances the handshake too.
  ssize_t ReadPlaintext(char* dst, size_t capacity);

  // Encrypts `plaintext` (held until the handshake completes). False once the session failed or
  // closed (the bytes are dropped).
  bool WritePlaintext(std::string_view plaintext);

  // Appends the ciphertext waiting for the socket to *out; returns how many bytes.
  size_t TakeCiphertext(std::string* out);
  bool HasCiphertext() const;

  // Queues a close_notify alert (take it with TakeCiphertext). Idempotent.
  void SendCloseNotify();

  State state() const { return state_; }
  static const char* StateName(State state);
  // Why the session failed (OpenSSL's reason, e.g. "unsupported protocol"); empty otherwise.
  const std::string& error() const { return error_; }
  // The verified client certificate's subject common name; empty without a client certificate
  // (or before the handshake completed). With ClientCertificates kOptional/kRequired every
  // certificate accepted has verified against the CA file.
  const std::string& peer_identity() const { return peer_identity_; }
  // "TLSv1.3 TLS_AES_256_GCM_SHA384" once established, for logs.
  std::string Description() const;

 private:
  // Sets state_ from the result of an SSL_read / SSL_write / SSL_do_handshake call; false when
  // the session failed or closed.
  bool Settle(int rc);
  void OnEstablished();
  void Fail(std::string why);
  // Encrypts held plaintext once established.
  bool FlushHeld();

  SSL* ssl_;  // owned: SSL_free in the destructor (frees both BIOs)
  BIO* in_;   // borrowed from ssl_: ciphertext from the peer
  BIO* out_;  // borrowed from ssl_: ciphertext for the peer
  State state_ = State::kHandshaking;
  std::string held_;  // plaintext written before the handshake completed
  std::string error_;
  std::string peer_identity_;
};

}  // namespace roundhouse::server::tls
