#include "server/tls/tls_session.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cassert>
#include <climits>

namespace roundhouse::server::tls {
namespace {

// OpenSSL's reason for the newest queued error, the most specific one (the queue is then
// cleared), else `fallback`.
std::string TakeReason(const char* fallback) {
  const unsigned long code = ERR_peek_last_error();  // NOLINT(google-runtime-int): OpenSSL's type
  ERR_clear_error();
  if (code == 0) return fallback;
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : fallback;
}

int ClampToInt(size_t n) { return static_cast<int>(std::min<size_t>(n, INT_MAX)); }

// SSL_get_error needs an empty error queue before the call it explains. Our own failures leave it
// empty (TakeReason); this clears what another user of OpenSSL on the thread may have left. Not
// ERR_clear_error unconditionally: it walks every slot of the queue, on every record.
void ClearStaleErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

Session::Session(const Context& context)
    : ssl_(SSL_new(context.native())), in_(BIO_new(BIO_s_mem())), out_(BIO_new(BIO_s_mem())) {
  if (ssl_ == nullptr || in_ == nullptr || out_ == nullptr) {
    // Out of memory: the session is unusable; the owner sees kFailed on its first call.
    BIO_free(in_);
    BIO_free(out_);
    in_ = out_ = nullptr;
    state_ = State::kFailed;
    error_ = "out of memory";
    return;
  }
  // A memory BIO that is empty reports "retry" rather than end of file, so SSL_read says
  // WANT_READ when it needs more ciphertext.
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_mem_eof_return(out_, -1);
  SSL_set_bio(ssl_, in_, out_);  // ssl_ owns both BIOs from here
  SSL_set_accept_state(ssl_);
}

Session::~Session() { SSL_free(ssl_); }

const char* Session::StateName(State state) {
  switch (state) {
    case State::kHandshaking:
      return "handshaking";
    case State::kEstablished:
      return "established";
    case State::kClosed:
      return "closed";
    case State::kFailed:
      return "failed";
  }
  return "?";
}

bool Session::PutCiphertext(std::string_view ciphertext) {
  if (state_ == State::kFailed) return false;
  while (!ciphertext.empty()) {
    const int n = BIO_write(in_, ciphertext.data(), ClampToInt(ciphertext.size()));
    if (n <= 0) {
      Fail("out of memory");
      return false;
    }
    ciphertext.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

ssize_t Session::ReadPlaintext(char* dst, size_t capacity) {
  if (state_ == State::kFailed) return -1;
  if (state_ == State::kClosed || capacity == 0) return 0;
  // Established and nothing buffered: no record can be complete, so the call that would only
  // say "want read" is skipped (one SSL_read per record, not one more per socket read).
  if (state_ == State::kEstablished && BIO_ctrl_pending(in_) == 0 && SSL_has_pending(ssl_) == 0) {
    return 0;
  }
  ClearStaleErrors();
  const int rc = SSL_read(ssl_, dst, ClampToInt(capacity));
  if (rc > 0) {
    if (state_ == State::kHandshaking) OnEstablished();
    return rc;
  }
  if (!Settle(rc)) return state_ == State::kFailed ? -1 : 0;
  return 0;
}

bool Session::Settle(int rc) {
  const int err = SSL_get_error(ssl_, rc);
  switch (err) {
    case SSL_ERROR_NONE:
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:  // the write BIO grows; not expected, harmless
      if (state_ == State::kHandshaking && SSL_is_init_finished(ssl_)) OnEstablished();
      return state_ != State::kFailed;
    case SSL_ERROR_ZERO_RETURN:
      state_ = State::kClosed;
      return false;
    case SSL_ERROR_SSL: {
      std::string why = TakeReason("protocol error");
      if (const long verify = SSL_get_verify_result(ssl_); verify != X509_V_OK) {  // NOLINT
        why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
      }
      Fail(std::move(why));
      return false;
    }
    default:
      // SSL_ERROR_SYSCALL with memory BIOs: the peer's records ended inside a message (or an
      // internal error); either way the stream cannot continue.
      Fail(TakeReason("unexpected end of the TLS stream"));
      return false;
  }
}

void Session::OnEstablished() {
  state_ = State::kEstablished;
  if (const X509* cert = SSL_get0_peer_certificate(ssl_);
      cert != nullptr && SSL_get_verify_result(ssl_) == X509_V_OK) {
    const X509_NAME* subject = X509_get_subject_name(cert);
    const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (index >= 0) {
      const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
      unsigned char* utf8 = nullptr;
      const int length = ASN1_STRING_to_UTF8(&utf8, cn);
      if (length > 0) peer_identity_.assign(reinterpret_cast<const char*>(utf8), length);
      OPENSSL_free(utf8);
    }
  }
  if (!FlushHeld()) return;
}

bool Session::FlushHeld() {
  if (held_.empty()) return true;
  std::string held;
  held.swap(held_);
  return WritePlaintext(held);
}

bool Session::WritePlaintext(std::string_view plaintext) {
  switch (state_) {
    case State::kFailed:
    case State::kClosed:
      return false;
    case State::kHandshaking:
      held_.append(plaintext);
      return true;
    case State::kEstablished:
      break;
  }
  ClearStaleErrors();
  while (!plaintext.empty()) {
    const int rc = SSL_write(ssl_, plaintext.data(), ClampToInt(plaintext.size()));
    if (rc <= 0) {
      Settle(rc);
      return state_ != State::kFailed && state_ != State::kClosed;
    }
    plaintext.remove_prefix(static_cast<size_t>(rc));
  }
  return true;
}

size_t Session::TakeCiphertext(std::string* out) {
  if (out_ == nullptr) return 0;
  const size_t pending = BIO_ctrl_pending(out_);
  if (pending == 0) return 0;
  const size_t old_size = out->size();
  out->resize(old_size + pending);
  const int n = BIO_read(out_, out->data() + old_size, ClampToInt(pending));
  out->resize(old_size + static_cast<size_t>(std::max(n, 0)));
  return static_cast<size_t>(std::max(n, 0));
}

bool Session::HasCiphertext() const { return out_ != nullptr && BIO_ctrl_pending(out_) > 0; }

void Session::SendCloseNotify() {
  if (state_ != State::kEstablished && state_ != State::kClosed) return;
  if ((SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0) return;
  ERR_clear_error();
  (void)SSL_shutdown(ssl_);
  ERR_clear_error();
}

void Session::Fail(std::string why) {
  state_ = State::kFailed;
  error_ = std::move(why);
  held_.clear();
}

std::string Session::Description() const {
  if (ssl_ == nullptr || state_ == State::kHandshaking) return {};
  std::string text = SSL_get_version(ssl_);
  if (const char* cipher = SSL_get_cipher_name(ssl_); cipher != nullptr) {
    text += ' ';
    text += cipher;
  }
  return text;
}

}  // namespace roundhouse::server::tls
