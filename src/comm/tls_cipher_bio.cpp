// A BIO over the stream's ciphertext buffers (tls_cipher_bio.hpp).
#include "comm/tls_cipher_bio.hpp"

#include <algorithm>
#include <cstring>

namespace distrib::detail::tls {
namespace {

CipherBuffers& buffers_of(BIO* bio) { return *static_cast<CipherBuffers*>(BIO_get_data(bio)); }

int cipher_read(BIO* bio, char* out, int size) {
  BIO_clear_retry_flags(bio);
  CipherBuffers& b = buffers_of(bio);
  const std::size_t available = b.in_end - b.in_begin;
  if (available == 0) {
    // Not an end of stream: the stream reads the socket and asks OpenSSL again.
    BIO_set_retry_read(bio);
    return -1;
  }
  const std::size_t take = std::min(available, static_cast<std::size_t>(size));
  std::memcpy(out, b.incoming.data() + b.in_begin, take);
  b.in_begin += take;
  return static_cast<int>(take);
}

int cipher_write(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  std::vector<unsigned char>& out = buffers_of(bio).outgoing;
  out.insert(out.end(), bytes, bytes + size);
  return size;
}

long cipher_ctrl(BIO* bio, int command, long /*arg*/, void* /*ptr*/) {
  switch (command) {
    case BIO_CTRL_FLUSH:  // records are sent when the stream flushes `outgoing`
      return 1;
    case BIO_CTRL_PENDING:
      return static_cast<long>(buffers_of(bio).in_end - buffers_of(bio).in_begin);
    case BIO_CTRL_WPENDING:
      return static_cast<long>(buffers_of(bio).outgoing.size());
    default:
      return 0;
  }
}

BIO_METHOD* cipher_method() {
  // Made once and never freed: the module is never unloaded.
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "distrib ciphertext buffers");
    BIO_meth_set_read(m, cipher_read);
    BIO_meth_set_write(m, cipher_write);
    BIO_meth_set_ctrl(m, cipher_ctrl);
    return m;
  }();
  return method;
}

}  // namespace

BIO* make_cipher_bio(CipherBuffers& buffers) {
  BIO* bio = BIO_new(cipher_method());
  if (bio == nullptr) return nullptr;
  BIO_set_data(bio, &buffers);
  BIO_set_init(bio, 1);
  return bio;
}

}  // namespace distrib::detail::tls
