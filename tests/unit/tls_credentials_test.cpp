// TLS credentials (libdistrib_tls.so through comm/tls.hpp): the temporary CA and certificate,
// contexts from files and PEM text, the SecurityErrors of bad ones, and Security's makers.
#include <gtest/gtest.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include "comm/auth.hpp"
#include "comm/tls.hpp"
#include "distrib/config.hpp"
#include "distrib/errors.hpp"

namespace distrib::detail {
namespace {

X509* parse(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return cert;
}

// The SecurityError's message of making a context, "" if none is thrown.
std::string context_error(const Security& security) {
  try {
    tls_backend().make_context(security, TlsRole::server);
  } catch (const SecurityError& e) {
    return e.what();
  }
  return "";
}

TEST(TlsCredentials, TheBackendIsLoadedOnce) { EXPECT_EQ(&tls_backend(), &tls_backend()); }

TEST(TlsCredentials, ATemporaryCaSignsACertificateForBothRoles) {
  const TemporaryCredentials c = tls_backend().make_temporary(-60, 3600);
  X509* ca = parse(c.ca_pem);
  X509* leaf = parse(c.cert_pem);
  ASSERT_TRUE(ca && leaf);
  EXPECT_EQ(X509_check_ca(ca), 1) << "basicConstraints CA:TRUE and keyCertSign";
  EXPECT_EQ(X509_check_ca(leaf), 0);
  char cn[64] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, "distrib");
  EXPECT_EQ(X509_check_host(leaf, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
  EXPECT_EQ(EVP_PKEY_get_bits(X509_get0_pubkey(leaf)), 256);
  EXPECT_TRUE(EVP_PKEY_is_a(X509_get0_pubkey(leaf), "EC"));
  // Valid now, not in two hours; good for a TLS client and a TLS server.
  std::time_t later = std::time(nullptr) + 7200;
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(leaf)), 0);
  EXPECT_GT(X509_cmp_current_time(X509_get0_notAfter(leaf)), 0);
  EXPECT_LT(X509_cmp_time(X509_get0_notAfter(leaf), &later), 0);
  for (const char* purpose : {"sslclient", "sslserver"}) {
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, leaf, nullptr);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_get_by_sname(purpose) + 1);
    EXPECT_EQ(X509_verify_cert(ctx), 1) << purpose << ": " << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
  }
  // Another call: another CA, another serial.
  X509* other = parse(tls_backend().make_temporary(-60, 3600).cert_pem);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf), X509_get0_serialNumber(other)), 0);
  EXPECT_NE(c.key_pem.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  X509_free(other);
  X509_free(leaf);
  X509_free(ca);
}

TEST(TlsCredentials, SecurityTemporaryHasTlsAndAToken) {
  const Security s = Security::temporary();
  EXPECT_TRUE(s.has_tls());
  EXPECT_TRUE(s.enabled());
  EXPECT_EQ(s.tls_ca_file.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
  EXPECT_EQ(s.tls_cert.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
  EXPECT_EQ(s.tls_key.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
  EXPECT_EQ(s.token.size(), 64u);
  EXPECT_NE(s.token, Security::temporary().token);
  EXPECT_EQ(context_error(s), "");
}

TEST(TlsCredentials, SecurityFromTheEnvironment) {
  ::setenv("DISTRIB_AUTH_TOKEN", "tok", 1);
  ::setenv("DISTRIB_TLS_CA_FILE", "ca.pem", 1);
  ::setenv("DISTRIB_TLS_CERT", "cert.pem", 1);
  ::unsetenv("DISTRIB_TLS_KEY");
  // Earlier tests in this process may have set a token, and the configuration was read
  // before these variables were: both go back to the environment.
  detail::auth::reset_process_token();
  config::reload();
  Security s = Security::from_environment();
  EXPECT_EQ(s.token, "tok");
  EXPECT_EQ(s.tls_ca_file, "ca.pem");
  EXPECT_EQ(s.tls_cert, "cert.pem");
  EXPECT_EQ(s.tls_key, "");
  EXPECT_FALSE(s.has_tls());
  for (const char* name : {"DISTRIB_AUTH_TOKEN", "DISTRIB_TLS_CA_FILE", "DISTRIB_TLS_CERT"}) ::unsetenv(name);
  config::reload();
  s = Security::from_environment();
  EXPECT_FALSE(s.enabled());
}

TEST(TlsCredentials, FilesWorkAsPemTextDoes) {
  const TemporaryCredentials c = tls_backend().make_temporary(-60, 3600);
  const auto dir = std::filesystem::temp_directory_path() / ("distrib-tls-unit-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  Security s;
  s.tls_ca_file = (dir / "ca.pem").string();
  s.tls_cert = (dir / "cert.pem").string();
  s.tls_key = (dir / "key.pem").string();
  std::ofstream(s.tls_ca_file) << c.ca_pem;
  std::ofstream(s.tls_cert) << c.cert_pem << c.ca_pem;  // a chain after the certificate
  std::ofstream(s.tls_key) << c.key_pem;
  EXPECT_EQ(context_error(s), "");
  std::filesystem::remove_all(dir);
  const std::string missing = context_error(s);
  EXPECT_NE(missing.find("tls_ca_file '" + s.tls_ca_file + "'"), std::string::npos) << missing;
  EXPECT_NE(missing.find("No such file or directory"), std::string::npos) << missing;
}

TEST(TlsCredentials, BadCredentialsAreSecurityErrorsThatSayWhatIsWrong) {
  const TemporaryCredentials a = tls_backend().make_temporary(-60, 3600);
  const TemporaryCredentials b = tls_backend().make_temporary(-60, 3600);
  auto error_with = [&](std::string Security::*field, const std::string& value) {
    Security s;
    s.tls_ca_file = a.ca_pem;
    s.tls_cert = a.cert_pem;
    s.tls_key = a.key_pem;
    s.*field = value;
    const std::string e = context_error(s);
    std::cout << e << "\n";
    return e;
  };
  auto has = [](const std::string& message, const std::string& part) {
    return message.find(part) != std::string::npos;
  };
  std::string e = error_with(&Security::tls_cert, "/no/such/cert.pem");
  EXPECT_TRUE(has(e, "tls_cert '/no/such/cert.pem'") && has(e, "No such file or directory")) << e;

  e = error_with(&Security::tls_cert, "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n");
  EXPECT_TRUE(has(e, "tls_cert (PEM text): not a PEM certificate")) << e;

  const auto garbage = std::filesystem::temp_directory_path() / ("distrib-tls-garbage-" + std::to_string(::getpid()));
  std::ofstream(garbage) << "hello, not a certificate\n";
  e = error_with(&Security::tls_ca_file, garbage.string());
  EXPECT_TRUE(has(e, "tls_ca_file '" + garbage.string() + "': not a PEM certificate") && has(e, "no start line")) << e;
  std::filesystem::remove(garbage);

  e = error_with(&Security::tls_key, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  EXPECT_TRUE(has(e, "tls_key (PEM text): not a PEM private key")) << e;

  e = error_with(&Security::tls_key, b.key_pem);
  EXPECT_TRUE(has(e, "tls_key (PEM text) does not match the certificate of tls_cert") && has(e, "key values mismatch")) << e;

  e = error_with(&Security::tls_ca_file, "");
  EXPECT_TRUE(has(e, "tls_ca_file is not set")) << e;
}

}  // namespace
}  // namespace distrib::detail
