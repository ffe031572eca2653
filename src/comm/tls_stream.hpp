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

/// Plaintext bytes per TLS record: small parts are gathered into records of this size, and
/// large ones are cut into them. 32 bytes under RFC 8446's 16 KiB, so that successive records
/// do not all sit at the same offset modulo 4 KiB from OpenSSL's record buffers: glibc's
/// memcpy (rep movsb) runs ten times slower on this AMD CPU when the destination is 1 to 31
/// bytes past the source modulo 4 KiB, and with 16 KiB records a transfer whose buffers fell
/// at such a distance copied every record slowly (now at most 1 record in 128).
inline constexpr std::size_t kRecordBytes = 16 * 1024 - 32;

}  // namespace distrib::detail::tls
