#include "server/tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <utility>

namespace roundhouse::server::tls {
namespace {

// TLS 1.2 suites: forward secrecy and AEAD only. TLS 1.3 suites are all AEAD; OpenSSL's default
// list is kept for them.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

// The newest queued OpenSSL error as text (and clears the queue), or `fallback`.
std::string TakeOpenSslError(const char* fallback) {
  const unsigned long code = ERR_peek_last_error();  // NOLINT(google-runtime-int): OpenSSL's type
  ERR_clear_error();
  if (code == 0) return fallback;
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : fallback;
}

std::string NameText(const X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);  // NOLINT(google-runtime-int)
  std::string text(data, size > 0 ? static_cast<size_t>(size) : 0);
  BIO_free(bio);
  return text;
}

std::string TimeText(const ASN1_TIME* time) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  ASN1_TIME_print(bio, time);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);  // NOLINT(google-runtime-int)
  std::string text(data, size > 0 ? static_cast<size_t>(size) : 0);
  BIO_free(bio);
  return text;
}

// The context id that ties cached sessions to this server (required by OpenSSL for session
// resumption once client certificates are verified).
constexpr unsigned char kSessionIdContext[] = "roundhouse";

}  // namespace

bool ParseClientCertificates(const std::string& name, ClientCertificates* out) {
  if (name == "none") {
    *out = ClientCertificates::kNone;
  } else if (name == "optional") {
    *out = ClientCertificates::kOptional;
  } else if (name == "required") {
    *out = ClientCertificates::kRequired;
  } else {
    return false;
  }
  return true;
}

const char* ClientCertificatesName(ClientCertificates mode) {
  switch (mode) {
    case ClientCertificates::kNone:
      return "none";
    case ClientCertificates::kOptional:
      return "optional";
    case ClientCertificates::kRequired:
      return "required";
  }
  return "?";
}

Result<std::shared_ptr<const Context>> Context::Load(const ContextOptions& options) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    return Status::Error("TLS: cannot create a context: " + TakeOpenSslError("out of memory"));
  }
  // From here `ctx` is freed on every error path by `fail`.
  auto fail = [ctx](std::string what) -> Status {
    SSL_CTX_free(ctx);
    return Status::Error("TLS: " + std::move(what));
  };

  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // Idle connections give their record buffers back.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
    return fail("cannot set the cipher list: " + TakeOpenSslError("unknown error"));
  }
  SSL_CTX_set_dh_auto(ctx, 1);
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof(kSessionIdContext) - 1);

  if (SSL_CTX_use_certificate_chain_file(ctx, options.certificate_file.c_str()) != 1) {
    return fail("cannot load the certificate '" + options.certificate_file +
                "': " + TakeOpenSslError("unreadable"));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail("cannot load the key '" + options.key_file +
                "': " + TakeOpenSslError("unreadable"));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return fail("the key '" + options.key_file + "' does not match the certificate '" +
                options.certificate_file + "'");
  }

  if (options.client_certificates != ClientCertificates::kNone && options.ca_file.empty()) {
    return fail("verifying client certificates needs a CA file (--ssl-ca-file)");
  }
  if (!options.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
      return fail("cannot load the CA file '" + options.ca_file +
                  "': " + TakeOpenSslError("unreadable"));
    }
    // The CA names the server sends in its certificate request, so a client with several
    // certificates can pick the right one.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.ca_file.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);
    ERR_clear_error();
  }
  switch (options.client_certificates) {
    case ClientCertificates::kNone:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
      break;
    case ClientCertificates::kOptional:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
      break;
    case ClientCertificates::kRequired:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }

  std::string description;
  if (X509* cert = SSL_CTX_get0_certificate(ctx); cert != nullptr) {
    description = "subject " + NameText(X509_get_subject_name(cert)) + ", expires " +
                  TimeText(X509_get0_notAfter(cert));
  }
  return std::shared_ptr<const Context>(
      new Context(ctx, std::move(description), options.client_certificates));
}

Context::~Context() { SSL_CTX_free(ctx_); }

}  // namespace roundhouse::server::tls
