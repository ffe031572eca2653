// A TLS ByteStream: Asio's ssl::stream over a connected socket, with errors that say why.
#include "comm/tls_stream.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <asio/ip/tcp.hpp>
#include <asio/ssl/error.hpp>
#include <asio/ssl/stream.hpp>

#include <algorithm>
#include <cstring>

namespace distrib::detail::tls {
namespace {

// ---- errors -------------------------------------------------------------------------------
// Asio reports OpenSSL's reason alone ("wrong version number (SSL routines)"); these
// categories say what it means for a connection. Their values are OpenSSL's packed error
// codes (as Asio's ssl category), kPeerClosed, or (verify_category) an X509_V_ERR_* code.

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

bool is_ssl(const asio::error_code& ec) { return ec.category() == asio::error::get_ssl_category(); }

// After the handshake. Every distrib close is immediate (no close_notify), so a peer that
// closes looks like a truncated stream: that is a plain end of stream to the Connection, as
// on a socket (a cut frame is still seen: the framing knows each frame's length).
asio::error_code stream_error(const asio::error_code& ec) {
  if (ec == asio::ssl::error::stream_truncated) return asio::error::eof;
  if (is_ssl(ec)) return {ec.value(), stream_category()};
  return ec;
}

// ---- the stream ---------------------------------------------------------------------------

class TlsStream final : public ByteStream {
 public:
  TlsStream(std::shared_ptr<asio::ssl::context> context, StreamSocket socket, TlsRole role)
      : context_(std::move(context)), peer_(describe_peer(socket)), stream_(std::move(socket), *context_), role_(role) {
    asio::error_code ec;
    // TCP only: small messages go at once (a Unix socket has no Nagle to turn off).
    if (!detail::local_ip(stream_.next_layer()).empty())
      stream_.next_layer().set_option(asio::ip::tcp::no_delay(true), ec);
  }

  asio::any_io_executor executor() override { return stream_.get_executor(); }

  void async_handshake(Completion done) override {
    const auto type = role_ == TlsRole::client ? asio::ssl::stream_base::client : asio::ssl::stream_base::server;
    stream_.async_handshake(type, [this, done = std::move(done)](asio::error_code ec) mutable {
      done(handshake_error(ec));
    });
  }

  void async_read_some(asio::mutable_buffer into, IoCompletion done) override {
    stream_.async_read_some(into, [done = std::move(done)](asio::error_code ec, std::size_t n) mutable {
      done(stream_error(ec), n);
    });
  }

  // OpenSSL encrypts one buffer per call, into one record of at most 16 KiB: many small
  // parts (a frame's header, then small messages) would each be a record, an encryption and
  // a send of their own. Parts before the first one of 16 KiB are copied into one record.
  void async_write_some(std::span<const asio::const_buffer> parts, IoCompletion done) override {
    std::size_t first = 0;
    while (first + 1 < parts.size() && parts[first].size() == 0) ++first;
    asio::const_buffer out = parts.empty() ? asio::const_buffer{} : parts[first];
    if (out.size() < kRecordBytes && first + 1 < parts.size()) out = stage(parts.subspan(first));
    stream_.async_write_some(out, [done = std::move(done)](asio::error_code ec, std::size_t n) mutable {
      done(stream_error(ec), n);
    });
  }

  void close() override {
    asio::error_code ec;
    stream_.next_layer().shutdown(StreamSocket::shutdown_both, ec);
    stream_.next_layer().close(ec);
  }

  const std::string& peer() const override { return peer_; }
  std::string local_ip() const override { return detail::local_ip(stream_.next_layer()); }

 private:
  // Copies the head of `parts` into one record's worth of staging (a prefix of what they
  // hold: the caller is told how much was written, and goes on from there).
  asio::const_buffer stage(std::span<const asio::const_buffer> parts) {
    if (!staging_) staging_ = std::make_unique<std::byte[]>(kRecordBytes);
    std::size_t n = 0;
    for (const asio::const_buffer& part : parts) {
      const std::size_t take = std::min(part.size(), kRecordBytes - n);
      std::memcpy(staging_.get() + n, part.data(), take);
      n += take;
      if (n == kRecordBytes) break;
    }
    return {staging_.get(), n};
  }

  asio::error_code handshake_error(const asio::error_code& ec) {
    if (!ec || ec == asio::error::operation_aborted) return ec;
    if (is_ssl(ec)) {
      if (ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        const long result = SSL_get_verify_result(stream_.native_handle());
        if (result != X509_V_OK) return {static_cast<int>(result), verify_category()};
      }
      return {ec.value(), handshake_category()};
    }
    if (ec == asio::ssl::error::stream_truncated || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::broken_pipe)
      return {kPeerClosed, handshake_category()};
    return ec;
  }

  std::shared_ptr<asio::ssl::context> context_;  // before stream_, which uses it
  std::string peer_;
  asio::ssl::stream<StreamSocket> stream_;
  TlsRole role_;
  std::unique_ptr<std::byte[]> staging_;  // kRecordBytes, made by the first write of small parts
};

}  // namespace

ByteStreamPtr make_tls_stream(std::shared_ptr<asio::ssl::context> context, StreamSocket socket, TlsRole role) {
  return std::make_unique<TlsStream>(std::move(context), std::move(socket), role);
}

}  // namespace distrib::detail::tls
