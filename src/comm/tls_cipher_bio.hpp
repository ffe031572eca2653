#pragma once
// Inside libdistrib_tls.so only: the ciphertext between an SSL object and its socket, in
// buffers the stream owns. OpenSSL reads records from `incoming` and appends the records it
// writes to `outgoing`; the stream moves many records at once between them and the socket
// (one large read or write per batch, where a BIO pair of one record's size would need one
// syscall per 16 KiB record).
#include <openssl/bio.h>

#include <cstddef>
#include <vector>

namespace distrib::detail::tls {

struct CipherBuffers {
  std::vector<unsigned char> incoming;  // bytes from the socket: [in_begin, in_end) unread
  std::size_t in_begin = 0;
  std::size_t in_end = 0;
  std::vector<unsigned char> outgoing;  // records to send, in order
};

/// A BIO over `buffers` (which must outlive it): reads take from `incoming` and ask to be
/// retried when it is empty; writes append to `outgoing` and never fail.
BIO* make_cipher_bio(CipherBuffers& buffers);

}  // namespace distrib::detail::tls
