// OpenSSL's failures as error codes with messages that say why (tls_errors.hpp).
#include "comm/tls_errors.hpp"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include <asio/error.hpp>

#include <string>

namespace distrib::detail::tls {
namespace {

// The categories' values are OpenSSL's packed error codes, kPeerClosed, or
// (verify_category) an X509_V_ERR_* code.
constexpr int kPeerClosed = 1;  // no OpenSSL code is this small (its library bits are not 0)

std::string describe(int value) {
  if (value == kPeerClosed)
    return "the peer closed the connection (does it speak TLS? does it accept our certificate?)";
  const auto code = static_cast<unsigned long>(value);
  const int reason = ERR_GET_REASON(code);
  const char* text = ERR_reason_error_string(code);
  const std::string what = text != nullptr ? text : "OpenSSL error " + std::to_string(reason);
  switch (reason) {
    // Bytes that are not a TLS record: a plaintext peer, or one on another protocol.
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
      return what + " (the peer does not speak TLS 1.3: is it using tcp://?)";
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return what + " (the peer refused our certificate)";
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      return what + " (is the peer given a certificate?)";
    default:
      return what;
  }
}

class TlsCategory final : public asio::error_category {
 public:
  TlsCategory(const char* name, const char* prefix) : name_(name), prefix_(prefix) {}
  const char* name() const noexcept override { return name_; }
  std::string message(int value) const override { return prefix_ + describe(value); }

 private:
  const char* name_;
  std::string prefix_;
};

class VerifyCategory final : public asio::error_category {
 public:
  const char* name() const noexcept override { return "distrib.tls.verify"; }
  std::string message(int value) const override {
    return std::string("TLS handshake failed: the peer's certificate was refused: ") +
           X509_verify_cert_error_string(value);
  }
};

// The module is never unloaded, so error codes may carry these anywhere in the process.
const TlsCategory& handshake_category() {
  static const TlsCategory c("distrib.tls.handshake", "TLS handshake failed: ");
  return c;
}
const TlsCategory& stream_category() {
  static const TlsCategory c("distrib.tls", "TLS: ");
  return c;
}
const VerifyCategory& verify_category() {
  static const VerifyCategory c;
  return c;
}

bool is_unexpected_eof(unsigned long code) {
  return ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

}  // namespace

asio::error_code handshake_failure(SSL* ssl, int ssl_error, unsigned long first_error) {
  if ((ssl_error != SSL_ERROR_SSL && ssl_error != SSL_ERROR_SYSCALL) || first_error == 0 || is_unexpected_eof(first_error))
    return {kPeerClosed, handshake_category()};
  if (ERR_GET_REASON(first_error) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    const long result = SSL_get_verify_result(ssl);
    if (result != X509_V_OK) return {static_cast<int>(result), verify_category()};
  }
  return {static_cast<int>(first_error), handshake_category()};
}

asio::error_code handshake_socket_failure(const asio::error_code& socket_error) {
  if (socket_error == asio::error::eof || socket_error == asio::error::connection_reset ||
      socket_error == asio::error::broken_pipe)
    return {kPeerClosed, handshake_category()};
  return socket_error;
}

// Every distrib close is immediate (no close_notify), so a peer that closes looks like a
// truncated stream: that is a plain end of stream to the Connection, as on a socket (a cut
// frame is still seen: the framing knows each frame's length).
asio::error_code stream_failure(int ssl_error, unsigned long first_error) {
  if (ssl_error == SSL_ERROR_ZERO_RETURN || first_error == 0 || is_unexpected_eof(first_error)) return asio::error::eof;
  return {static_cast<int>(first_error), stream_category()};
}

}  // namespace distrib::detail::tls
