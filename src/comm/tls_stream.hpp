#pragma once
// Inside libdistrib_tls.so only: a connected socket as a TLS ByteStream (OpenSSL driven over
// buffers of ciphertext: many records per socket read or write).
#include <asio/ssl/context.hpp>

#include <memory>

#include "comm/byte_stream.hpp"
#include "comm/tls.hpp"

namespace distrib::detail::tls {

/// The stream keeps `context` alive. Its handshake, in `role`, completes with an error whose
/// message says why it failed ("TLS handshake failed: the peer's certificate was refused:
/// certificate has expired", "... the peer does not speak TLS ...").
ByteStreamPtr make_tls_stream(std::shared_ptr<asio::ssl::context> context, StreamSocket socket, TlsRole role);

/// Plaintext bytes per TLS record (RFC 8446's limit): small parts are gathered into records
/// of this size.
inline constexpr std::size_t kRecordBytes = 16 * 1024;

}  // namespace distrib::detail::tls
