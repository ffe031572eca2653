// TlsBackend::make_temporary: a throw-away CA and one certificate it signed (OpenSSL 3).
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "comm/tls_openssl.hpp"
#include "distrib/errors.hpp"

namespace distrib::detail::tls {
namespace {

void check(bool ok, const char* step) {
  if (!ok) throw SecurityError(std::string("TLS: cannot make a temporary certificate (") + step + "): " + openssl_errors());
}

KeyPtr p256_key() {
  KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  check(key != nullptr, "EC P-256 key");
  return key;
}

// A random positive serial of 127 bits (RFC 5280: at most 20 bytes, unpredictable).
void set_random_serial(X509* cert) {
  BignumPtr serial(BN_new());
  check(serial && BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1, "serial");
  check(BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) != nullptr, "serial");
}

// A v3 certificate for `key` named CN=`common_name`, valid between the offsets from now;
// without an issuer, extensions or signature yet.
X509Ptr new_certificate(EVP_PKEY* key, const char* common_name, long not_before_seconds, long not_after_seconds) {
  X509Ptr cert(X509_new());
  check(cert != nullptr, "X509_new");
  check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "version");
  set_random_serial(cert.get());
  check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), not_before_seconds) != nullptr, "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), not_after_seconds) != nullptr, "notAfter");
  check(X509_set_pubkey(cert.get(), key) == 1, "public key");
  X509_NAME* name = X509_get_subject_name(cert.get());
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name), -1,
                                   -1, 0) == 1,
        "subject");
  return cert;
}

// Adds extensions given as in openssl.cnf ("critical,CA:TRUE"), in order (the authority
// key identifier reads the issuer's subject key identifier, so that comes first).
void add_extensions(X509* cert, X509* issuer, std::initializer_list<std::pair<int, const char*>> extensions) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
    check(ext != nullptr, OBJ_nid2sn(nid));
    check(X509_add_ext(cert, ext.get(), -1) == 1, OBJ_nid2sn(nid));
  }
}

std::string certificate_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(bio && PEM_write_bio_X509(bio.get(), cert) == 1, "PEM of a certificate");
  return bio_text(bio.get());
}

std::string key_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));  // PKCS#8, unencrypted: "-----BEGIN PRIVATE KEY-----"
  check(bio && PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1, "PEM of the key");
  return bio_text(bio.get());
}

}  // namespace

TemporaryCredentials make_temporary_credentials(long not_before_seconds, long not_after_seconds) {
  ERR_clear_error();
  // The CA's key signs the one certificate, then is dropped: nothing else can be signed.
  KeyPtr ca_key = p256_key();
  X509Ptr ca = new_certificate(ca_key.get(), "distrib CA", not_before_seconds, not_after_seconds);
  check(X509_set_issuer_name(ca.get(), X509_get_subject_name(ca.get())) == 1, "CA issuer");
  add_extensions(ca.get(), ca.get(),
                 {{NID_basic_constraints, "critical,CA:TRUE"},
                  {NID_key_usage, "critical,keyCertSign,cRLSign"},
                  {NID_subject_key_identifier, "hash"}});
  check(X509_sign(ca.get(), ca_key.get(), EVP_sha256()) > 0, "signing the CA");

  KeyPtr key = p256_key();
  X509Ptr cert = new_certificate(key.get(), "distrib", not_before_seconds, not_after_seconds);
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.get())) == 1, "issuer");
  // Both roles: every process of a cluster shows this one certificate, as client and server.
  add_extensions(cert.get(), ca.get(),
                 {{NID_basic_constraints, "critical,CA:FALSE"},
                  {NID_key_usage, "critical,digitalSignature,keyAgreement"},
                  {NID_ext_key_usage, "serverAuth,clientAuth"},
                  {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"},
                  {NID_subject_key_identifier, "hash"},
                  {NID_authority_key_identifier, "keyid:always"}});
  check(X509_sign(cert.get(), ca_key.get(), EVP_sha256()) > 0, "signing the certificate");

  return TemporaryCredentials{certificate_pem(ca.get()), certificate_pem(cert.get()), key_pem(key.get())};
}

}  // namespace distrib::detail::tls
