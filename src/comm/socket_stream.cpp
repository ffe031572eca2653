// A plain socket as a ByteStream.
#include <asio/ip/tcp.hpp>

#include "comm/byte_stream.hpp"

namespace distrib::detail {
namespace {

class SocketStream final : public ByteStream {
 public:
  explicit SocketStream(StreamSocket socket) : socket_(std::move(socket)), peer_(describe_peer(socket_)) {
    asio::error_code ec;
    // TCP only: small messages go at once (a Unix socket has no Nagle to turn off).
    if (!detail::local_ip(socket_).empty()) socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  }
  asio::any_io_executor executor() override { return socket_.get_executor(); }
  void async_handshake(Completion done) override { done(asio::error_code{}); }
  void async_read_some(asio::mutable_buffer into, IoCompletion done) override {
    socket_.async_read_some(into, std::move(done));
  }
  void async_write_some(std::span<const asio::const_buffer> parts, IoCompletion done) override {
    socket_.async_write_some(parts, std::move(done));
  }
  void close() override {
    asio::error_code ec;
    socket_.shutdown(StreamSocket::shutdown_both, ec);
    socket_.close(ec);
  }
  const std::string& peer() const override { return peer_; }
  std::string local_ip() const override { return detail::local_ip(socket_); }

 private:
  StreamSocket socket_;
  std::string peer_;
};

}  // namespace

ByteStreamPtr make_socket_stream(StreamSocket socket) { return std::make_unique<SocketStream>(std::move(socket)); }

}  // namespace distrib::detail
