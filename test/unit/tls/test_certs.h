// Throw-away certificates for TLS tests and the TLS fuzz target, made in process with OpenSSL
// (EC P-256 keys): a CA, certificates it signs, and PEM files written into a scratch directory.
// Nothing here is secret or kept: every run makes new keys.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

namespace roundhouse::tls_test {

struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertDeleter {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyDeleter>;
using Cert = std::unique_ptr<X509, CertDeleter>;

inline Key NewKey() { return Key(EVP_EC_gen("P-256")); }

// A certificate for `key` named CN=`cn`, valid from now + `from_s` to now + `until_s` seconds,
// signed by `issuer_key` (`issuer` null: self-signed). `ca` adds basicConstraints CA:TRUE.
inline Cert MakeCert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                     bool ca, long from_s = -3600, long until_s = 86400) {  // NOLINT
  static long serial = 1;                                                   // NOLINT
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), from_s);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), until_s);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints,
                                            ca ? "critical,CA:TRUE" : "CA:FALSE");
  X509_add_ext(cert.get(), ext, -1);
  X509_EXTENSION_free(ext);
  if (!ca) {
    ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256());
  return cert;
}

inline void WriteCert(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  PEM_write_X509(f, cert);
  std::fclose(f);
}

inline void WriteKey(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

// A scratch directory with ca.pem, server.pem/server.key (CN=server) and client.pem/client.key
// (CN=`client_cn`), all from one fresh CA; removed by the destructor.
class CertDir {
 public:
  explicit CertDir(const std::string& client_cn = "client-one") {
    char tmpl[] = "/tmp/rh-tls-XXXXXX";
    dir_ = mkdtemp(tmpl);
    ca_key_ = NewKey();
    ca_ = MakeCert(ca_key_.get(), "test-ca", nullptr, nullptr, true);
    WriteCert(path("ca.pem"), ca_.get());
    Issue("server", "server");
    Issue("client", client_cn);
  }
  ~CertDir() { std::system(("rm -rf '" + dir_ + "'").c_str()); }  // NOLINT(cert-env33-c)
  CertDir(const CertDir&) = delete;
  CertDir& operator=(const CertDir&) = delete;

  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  // Writes NAME.pem / NAME.key for a new key with CN=`cn`, signed by this CA.
  void Issue(const std::string& name, const std::string& cn, long from_s = -3600,  // NOLINT
             long until_s = 86400) {                                               // NOLINT
    Key key = NewKey();
    Cert cert = MakeCert(key.get(), cn, ca_.get(), ca_key_.get(), false, from_s, until_s);
    WriteCert(path(name + ".pem"), cert.get());
    WriteKey(path(name + ".key"), key.get());
  }

 private:
  std::string dir_;
  Key ca_key_;
  Cert ca_;
};

}  // namespace roundhouse::tls_test
