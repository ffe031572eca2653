#pragma once
// Inside libdistrib_tls.so only: OpenSSL's failures as error codes whose messages say what
// they mean for a connection ("TLS handshake failed: the peer's certificate was refused:
// certificate has expired", "... the peer does not speak TLS 1.3: is it using tcp://?").
#include <openssl/ssl.h>

#include <asio/error_code.hpp>

namespace distrib::detail::tls {

/// The handshake's failure: `ssl_error` is SSL_get_error's answer, `first_error` the oldest
/// code of OpenSSL's error queue (0 if none). A refused certificate names the reason.
asio::error_code handshake_failure(SSL* ssl, int ssl_error, unsigned long first_error);

/// The handshake's failure when the socket failed or ended (the peer closed or reset it).
asio::error_code handshake_socket_failure(const asio::error_code& socket_error);

/// A failure after the handshake, as handshake_failure (a close_notify is an end of stream).
asio::error_code stream_failure(int ssl_error, unsigned long first_error);

}  // namespace distrib::detail::tls
