// libdistrib_tls.so: TLS contexts (Asio's ssl::context, OpenSSL's SSL_CTX), and the module's
// entry point.
// Loaded by tls_loader.cpp the first time a process uses TLS.
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <asio/ssl/context.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "comm/tls.hpp"
#include "comm/tls_openssl.hpp"
#include "comm/tls_stream.hpp"
#include "distrib/errors.hpp"

namespace distrib::detail::tls {
namespace {

bool is_pem_text(const std::string& value) {
  const auto start = value.find_first_not_of(" \t\r\n");
  return start != std::string::npos && value.compare(start, 10, "-----BEGIN") == 0;
}

// One of Security's fields, for messages: "tls_cert '/etc/distrib/node.pem'" or
// "tls_cert (PEM text)".
struct Field {
  const char* name;
  const std::string& value;
  std::string describe() const { return is_pem_text(value) ? std::string(name) + " (PEM text)" : std::string(name) + " '" + value + "'"; }
};

[[noreturn]] void fail(const Field& field, const std::string& problem) {
  throw SecurityError("TLS " + field.describe() + ": " + problem);
}

// The field's PEM text: itself, or the file it names.
std::string pem_of(const Field& field) {
  if (field.value.empty()) throw SecurityError(std::string("TLS ") + field.name + " is not set");
  if (is_pem_text(field.value)) return field.value;
  std::FILE* f = std::fopen(field.value.c_str(), "rb");
  if (f == nullptr) fail(field, std::string("cannot open the file: ") + std::strerror(errno));
  std::string text;
  char chunk[4096];
  std::size_t n = 0;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) text.append(chunk, n);
  const bool failed = std::ferror(f) != 0;
  const int error = errno;
  std::fclose(f);
  if (failed) fail(field, std::string("cannot read the file: ") + std::strerror(error));
  return text;
}

// Never prompts on a terminal (OpenSSL's default for an encrypted key): refuses instead.
int no_passphrase(char*, int, int, void*) { return -1; }

// Every certificate in the field (at least one).
std::vector<X509Ptr> certificates_of(const Field& field) {
  const std::string text = pem_of(field);
  BioPtr bio = memory_bio(text);
  std::vector<X509Ptr> out;
  ERR_clear_error();
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr)) out.emplace_back(cert);
  const unsigned long last = ERR_peek_last_error();
  // Reading stops at the end of the text with "no start line": an error only if no
  // certificate came before it.
  if (out.empty() || (last != 0 && !(ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE)))
    fail(field, "not a PEM certificate: " + openssl_errors());
  ERR_clear_error();
  return out;
}

KeyPtr key_of(const Field& field) {
  const std::string text = pem_of(field);
  BioPtr bio = memory_bio(text);
  ERR_clear_error();
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) fail(field, "not a PEM private key (an encrypted key is not supported): " + openssl_errors());
  return key;
}

class Context final : public TlsContext {
 public:
  // One context serves both roles (TLS_method): `role` is the one the caller means to use
  // most, and wrap() may ask for either.
  Context(const Security& security, TlsRole /*role*/) : context_(std::make_shared<asio::ssl::context>(asio::ssl::context::tls)) {
    SSL_CTX* ctx = context_->native_handle();
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 || SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
      throw SecurityError("TLS: this OpenSSL cannot be limited to TLS 1.3: " + openssl_errors());
    // AES-128-GCM first (OpenSSL's default puts AES-256 first): with AES-NI it is about 1.5x
    // as fast (openssl speed here: 2.7 against 1.8 GB/s), and TLS 1.3 requires every peer to
    // have it. Both ends are ours, and the server takes the client's order.
    if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") != 1)
      throw SecurityError("TLS: cannot set the cipher suites: " + openssl_errors());
    // Mutual TLS: each end shows a certificate, and accepts only a peer whose certificate the
    // CA signed. Host names are not checked (as Dask): the CA is the cluster's own and signs
    // only the cluster's certificates, which are then good from any address.
    context_->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
    // No resumption: connections are few and long-lived, and tickets would be bytes and
    // work after every handshake.
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

    const Field ca{"tls_ca_file", security.tls_ca_file};
    const Field cert{"tls_cert", security.tls_cert};
    const Field key{"tls_key", security.tls_key};
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    for (X509Ptr& c : certificates_of(ca))
      if (X509_STORE_add_cert(store, c.get()) != 1) fail(ca, "cannot use the CA certificate: " + openssl_errors());

    std::vector<X509Ptr> chain = certificates_of(cert);
    if (SSL_CTX_use_certificate(ctx, chain.front().get()) != 1) fail(cert, "cannot use the certificate: " + openssl_errors());
    for (std::size_t i = 1; i < chain.size(); ++i)  // intermediate CAs after the certificate
      if (SSL_CTX_add1_chain_cert(ctx, chain[i].get()) != 1) fail(cert, "cannot use its chain: " + openssl_errors());

    KeyPtr private_key = key_of(key);
    if (X509_check_private_key(chain.front().get(), private_key.get()) != 1)
      throw SecurityError("TLS " + key.describe() + " does not match the certificate of " + cert.describe() + ": " +
                          openssl_errors());
    if (SSL_CTX_use_PrivateKey(ctx, private_key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1)
      fail(key, "cannot use the key: " + openssl_errors());
  }

  ByteStreamPtr wrap(StreamSocket socket, TlsRole role) override {
    return make_tls_stream(context_, std::move(socket), role);
  }

 private:
  std::shared_ptr<asio::ssl::context> context_;  // shared with every stream made from it
};

class Backend final : public TlsBackend {
 public:
  std::shared_ptr<TlsContext> make_context(const Security& security, TlsRole role) override {
    return std::make_shared<Context>(security, role);
  }
  TemporaryCredentials make_temporary(long not_before_seconds, long not_after_seconds) override {
    return make_temporary_credentials(not_before_seconds, not_after_seconds);
  }
  std::string ca_fingerprint(const Security& security) override {
    const std::vector<X509Ptr> ca = certificates_of(Field{"tls_ca_file", security.tls_ca_file});
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (X509_digest(ca.front().get(), EVP_sha256(), digest, &length) != 1)
      throw SecurityError("TLS: cannot fingerprint the CA: " + openssl_errors());
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
      if (i > 0) out += ':';
      out += kHex[digest[i] >> 4];
      out += kHex[digest[i] & 15];
    }
    return out;
  }
};

}  // namespace
}  // namespace distrib::detail::tls

extern "C" __attribute__((visibility("default"))) distrib::detail::TlsBackend* distrib_tls_backend() {
  static distrib::detail::tls::Backend backend;  // holds nothing: nothing to order at exit
  return &backend;
}
