// A TLS ByteStream: OpenSSL driven over buffers of ciphertext (tls_cipher_bio.hpp), so that
// one socket read or write carries many records. Asio's ssl::stream moves one record per
// syscall and async operation, which held bulk transfers to a fraction of TCP's bandwidth.
#include "comm/tls_stream.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

#include "comm/tls_cipher_bio.hpp"
#include "comm/tls_errors.hpp"

namespace distrib::detail::tls {
namespace {

// Ciphertext read from the socket at once, as much as it holds (a Connection reads 256 KiB
// of plaintext per call: one socket read serves it).
constexpr std::size_t kCipherReadBytes = 256 * 1024;
// Plaintext encrypted per write: its records go to the socket in one write.
constexpr std::size_t kWriteBatchBytes = 256 * 1024;

struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

// OpenSSL's answer to one call: SSL_get_error's value and the oldest queued error (the
// queue is emptied, so that no later call reads a stale one).
struct SslResult {
  int error = SSL_ERROR_NONE;
  unsigned long first = 0;
};

SslResult result_of(SSL* ssl, int returned) {
  SslResult r{SSL_get_error(ssl, returned), ERR_get_error()};
  ERR_clear_error();
  return r;
}

class TlsStream final : public ByteStream {
 public:
  TlsStream(std::shared_ptr<asio::ssl::context> context, StreamSocket socket, TlsRole role)
      : context_(std::move(context)), socket_(std::move(socket)), peer_(describe_peer(socket_)),
        ssl_(SSL_new(context_->native_handle())) {
    asio::error_code ec;
    // TCP only: small messages go at once (a Unix socket has no Nagle to turn off).
    if (!detail::local_ip(socket_).empty()) socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    if (!ssl_) throw std::bad_alloc();
    BIO* bio = make_cipher_bio(buffers_);
    if (bio == nullptr) throw std::bad_alloc();
    SSL_set_bio(ssl_.get(), bio, bio);  // the SSL owns it, for both directions
    SSL_set_max_send_fragment(ssl_.get(), kRecordBytes);
    if (role == TlsRole::client) SSL_set_connect_state(ssl_.get());
    else SSL_set_accept_state(ssl_.get());
  }

  asio::any_io_executor executor() override { return socket_.get_executor(); }

  void async_handshake(Completion done) override {
    handshake_done_ = std::move(done);
    continue_handshake();
  }

  void async_read_some(asio::mutable_buffer into, IoCompletion done) override {
    read_into_ = into;
    read_done_ = std::move(done);
    continue_read(/*from_caller=*/true);
  }

  void async_write_some(std::span<const asio::const_buffer> parts, IoCompletion done) override {
    asio::error_code ec = write_error_;
    const std::size_t n = ec ? 0 : encrypt(parts, ec);
    if (ec || n == 0) {
      asio::post(socket_.get_executor(), [done = std::move(done), ec]() mutable { done(ec, 0); });
      return;
    }
    write_done_ = std::move(done);
    flush([this, n](asio::error_code flushed) {
      IoCompletion done = std::move(write_done_);
      done(flushed, flushed ? 0 : n);
    });
  }

  void close() override {
    asio::error_code ec;
    socket_.shutdown(StreamSocket::shutdown_both, ec);
    socket_.close(ec);
  }

  const std::string& peer() const override { return peer_; }
  std::string local_ip() const override { return detail::local_ip(socket_); }

 private:
  // ---- handshake --------------------------------------------------------------------------

  void continue_handshake() {
    ERR_clear_error();
    const int returned = SSL_do_handshake(ssl_.get());
    if (returned == 1) return flush([this](asio::error_code ec) { finish_handshake(ec ? handshake_socket_failure(ec) : ec); });
    const SslResult r = result_of(ssl_.get(), returned);
    if (r.error != SSL_ERROR_WANT_READ) {
      // Send the alert that tells the peer why, then fail.
      const asio::error_code failure = handshake_failure(ssl_.get(), r.error, r.first);
      return flush([this, failure](asio::error_code) { finish_handshake(failure); });
    }
    flush([this](asio::error_code ec) {
      if (ec) return finish_handshake(handshake_socket_failure(ec));
      read_ciphertext([this](asio::error_code ec) {
        if (ec) return finish_handshake(handshake_socket_failure(ec));
        continue_handshake();
      });
    });
  }

  void finish_handshake(asio::error_code ec) {
    Completion done = std::move(handshake_done_);
    done(ec);
  }

  // ---- reading ----------------------------------------------------------------------------

  // Decrypts what has come into the caller's buffer; reads the socket if nothing has.
  void continue_read(bool from_caller) {
    asio::error_code ec = read_error_;
    const std::size_t n = ec ? 0 : decrypt(ec);
    // Records that reading made (a reply to a KeyUpdate, which our peers never ask for) go
    // with the next write: a flush of its own would have no caller keeping the stream alive.
    if (n > 0 || ec) {
      // Bytes first; an error that came after them is the next read's answer.
      if (n > 0 && ec) read_error_ = ec, ec = {};
      return finish_read(ec, n, from_caller);
    }
    read_ciphertext([this](asio::error_code ec) {
      if (ec) return finish_read(ec, 0, false);
      continue_read(false);
    });
  }

  // Plaintext into read_into_, as much as the records read so far hold.
  std::size_t decrypt(asio::error_code& ec) {
    auto* out = static_cast<unsigned char*>(read_into_.data());
    std::size_t n = 0;
    while (n < read_into_.size()) {
      ERR_clear_error();
      std::size_t got = 0;
      const int returned = SSL_read_ex(ssl_.get(), out + n, read_into_.size() - n, &got);
      if (returned == 1) {
        n += got;
        continue;
      }
      const SslResult r = result_of(ssl_.get(), returned);
      if (r.error != SSL_ERROR_WANT_READ) ec = stream_failure(r.error, r.first);
      break;
    }
    return n;
  }

  void finish_read(asio::error_code ec, std::size_t n, bool from_caller) {
    IoCompletion done = std::move(read_done_);
    // Never inside the caller's async_read_some (its handler may read again, and again).
    if (from_caller) asio::post(socket_.get_executor(), [done = std::move(done), ec, n]() mutable { done(ec, n); });
    else done(ec, n);
  }

  // One socket read into `incoming`, which OpenSSL has emptied (it asks for more only then).
  template <class Then>
  void read_ciphertext(Then then) {
    buffers_.incoming.resize(kCipherReadBytes);
    buffers_.in_begin = buffers_.in_end = 0;
    socket_.async_read_some(asio::buffer(buffers_.incoming),
                            [this, then = std::move(then)](asio::error_code ec, std::size_t n) mutable {
                              buffers_.in_end = ec ? 0 : n;
                              then(ec);
                            });
  }

  // ---- writing ----------------------------------------------------------------------------

  // Encrypts a prefix of `parts` (up to kWriteBatchBytes) into `outgoing`; returns its size.
  // Parts smaller than a record are gathered into full records first: a record per small
  // part (a frame's header, a small message) would cost an encryption and 22 bytes each.
  std::size_t encrypt(std::span<const asio::const_buffer> parts, asio::error_code& ec) {
    if (!staging_) staging_ = std::make_unique<unsigned char[]>(kRecordBytes);
    std::size_t total = 0;
    std::size_t staged = 0;
    for (asio::const_buffer part : parts) {
      while (part.size() > 0 && total < kWriteBatchBytes && !ec) {
        std::size_t take = std::min(part.size(), kWriteBatchBytes - total);
        if (staged == 0 && take >= kRecordBytes) {
          take -= take % kRecordBytes;  // whole records; the tail joins what follows it
          seal(part.data(), take, ec);
        } else {
          take = std::min(take, kRecordBytes - staged);
          std::memcpy(staging_.get() + staged, part.data(), take);
          staged += take;
          if (staged == kRecordBytes) seal(staging_.get(), std::exchange(staged, 0), ec);
        }
        part += take;
        total += take;
      }
    }
    if (staged > 0) seal(staging_.get(), staged, ec);
    return ec ? 0 : total;
  }

  void seal(const void* data, std::size_t size, asio::error_code& ec) {
    if (ec) return;
    ERR_clear_error();
    std::size_t written = 0;
    const int returned = SSL_write_ex(ssl_.get(), data, size, &written);
    if (returned != 1) {
      const SslResult r = result_of(ssl_.get(), returned);
      ec = write_error_ = stream_failure(r.error, r.first);
    }
  }

  // Sends `outgoing` and whatever is added to it meanwhile, then calls `then` (may be empty).
  // One socket write at a time; writers that come during one wait for the same end.
  void flush(Completion then) {
    flush_waiters_.push_back(std::move(then));
    if (!flushing_) send_outgoing();
  }

  void send_outgoing() {
    if (buffers_.outgoing.empty()) return end_flush({});
    flushing_ = true;
    std::swap(sending_, buffers_.outgoing);
    buffers_.outgoing.clear();
    asio::async_write(socket_, asio::buffer(sending_), [this](asio::error_code ec, std::size_t) {
      if (ec) {
        buffers_.outgoing.clear();
        if (!write_error_) write_error_ = ec;
        return end_flush(ec);
      }
      send_outgoing();
    });
  }

  void end_flush(asio::error_code ec) {
    flushing_ = false;
    std::vector<Completion> waiters = std::move(flush_waiters_);
    flush_waiters_.clear();
    for (Completion& waiter : waiters)
      if (waiter) waiter(ec);
  }

  std::shared_ptr<asio::ssl::context> context_;  // before ssl_, which uses it
  StreamSocket socket_;
  std::string peer_;
  CipherBuffers buffers_;  // before ssl_: its BIO points here
  std::unique_ptr<SSL, SslDeleter> ssl_;

  Completion handshake_done_;
  asio::mutable_buffer read_into_;
  IoCompletion read_done_;
  asio::error_code read_error_;  // a failure seen after bytes were returned, for the next read
  IoCompletion write_done_;
  asio::error_code write_error_;  // once a write failed, every later one does
  std::unique_ptr<unsigned char[]> staging_;  // kRecordBytes, gathering small parts
  std::vector<unsigned char> sending_;        // records on their way to the socket
  bool flushing_ = false;
  std::vector<Completion> flush_waiters_;
};

}  // namespace

ByteStreamPtr make_tls_stream(std::shared_ptr<asio::ssl::context> context, StreamSocket socket, TlsRole role) {
  return std::make_unique<TlsStream>(std::move(context), std::move(socket), role);
}

}  // namespace distrib::detail::tls
