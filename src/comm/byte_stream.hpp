#pragma once
// The byte stream a Connection reads and writes, behind one interface so that the framing,
// authentication and batching in connection.cpp serve every transport alike: a plain socket
// (tcp://, unix://) here, TLS in tls_stream.hpp. Streams are made by transport.hpp's
// connect() and listen() and nowhere else.
//
// All calls happen on the stream's executor; completions run there too.
#include <asio/any_io_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/error_code.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "comm/endpoint.hpp"

namespace distrib::detail {

/// A move-only callable (std::function needs copies, Asio's handlers are move-only).
template <class Signature>
class UniqueFunction;

template <class R, class... Args>
class UniqueFunction<R(Args...)> {
 public:
  UniqueFunction() = default;
  template <class F>
  UniqueFunction(F f) : impl_(std::make_unique<Model<F>>(std::move(f))) {}  // NOLINT: implicit, like std::function
  R operator()(Args... args) { return impl_->call(std::forward<Args>(args)...); }
  explicit operator bool() const { return impl_ != nullptr; }

 private:
  struct Concept {
    virtual ~Concept() = default;
    virtual R call(Args... args) = 0;
  };
  template <class F>
  struct Model final : Concept {
    explicit Model(F f) : f(std::move(f)) {}
    R call(Args... args) override { return f(std::forward<Args>(args)...); }
    F f;
  };
  std::unique_ptr<Concept> impl_;
};

class ByteStream {
 public:
  using IoCompletion = UniqueFunction<void(asio::error_code, std::size_t)>;
  using Completion = UniqueFunction<void(asio::error_code)>;

  virtual ~ByteStream() = default;
  virtual asio::any_io_executor executor() = 0;
  /// Whatever the transport must do before bytes flow (a TLS handshake); a plain socket
  /// completes at once.
  virtual void async_handshake(Completion done) = 0;
  /// Reads at least one byte into `into`.
  virtual void async_read_some(asio::mutable_buffer into, IoCompletion done) = 0;
  /// Writes a prefix of `parts` (at least one byte); the spans must outlive the call.
  virtual void async_write_some(std::span<const asio::const_buffer> parts, IoCompletion done) = 0;
  /// Closes at once; pending operations complete with operation_aborted.
  virtual void close() = 0;
  /// The peer as text ("127.0.0.1:5000", "unix:@name").
  virtual const std::string& peer() const = 0;
  /// This end's IP address, "" when the stream is not over IP.
  virtual std::string local_ip() const = 0;

  /// The token the Connection over this stream proves (set by the transport from its
  /// Security); unset: the process's token (auth::process_token).
  void set_auth_token(std::string token) { auth_token_ = std::move(token); }
  const std::optional<std::string>& auth_token() const { return auth_token_; }

 private:
  std::optional<std::string> auth_token_;
};

using ByteStreamPtr = std::unique_ptr<ByteStream>;

/// A plain connected socket (tcp:// or unix://) as a ByteStream; TCP gets TCP_NODELAY.
ByteStreamPtr make_socket_stream(StreamSocket socket);

}  // namespace distrib::detail
