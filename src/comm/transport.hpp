#pragma once
// The one transport layer (issue 17, part 1): every socket the project opens, listening or
// connecting, is made here, chosen by the address's scheme as Dask's comm registry:
//
//   tcp://host:port   plain TCP (also a bare "host:port");
//   tls://host:port   TCP with mutual TLS 1.3 (comm/tls.hpp), for a process whose Security
//                     has TLS files;
//   unix://@name      an abstract Unix socket, within one host;
//   inproc://name     within this process, without sockets (comm/inproc_stream.hpp): a
//                     LocalCluster with processes = false. No TLS (nothing leaves the
//                     process); the token is still proved.
//
// The Security given applies to every stream made: its token is proved on each connection
// (falling back to the process's, auth.hpp), and a process with TLS files speaks TLS on
// every socket (a unix:// one too); asking it for a plaintext tcp:// address is a
// SecurityError, as Dask's require_encryption.
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "comm/byte_stream.hpp"
#include "distrib/security.hpp"

namespace distrib::detail {

/// "tcp", "tls", "unix" or "inproc" ("tcp" for a bare host:port); throws std::invalid_argument for
/// any other scheme.
std::string address_scheme(const std::string& address);
/// The scheme this process's listeners use: "tls" with TLS files, else "tcp".
std::string listen_scheme(const Security& security);

class Listener {
 public:
  virtual ~Listener() = default;
  /// The address peers reach this listener at, with its bound port ("tls://0.0.0.0:40311").
  virtual const std::string& address() const = 0;
  /// The bound IP address (unspecified for "0.0.0.0" and for Unix sockets) and port.
  virtual asio::ip::address bound_ip() const = 0;
  virtual std::uint16_t port() const = 0;
  /// The next connection, wrapped for the listener's security (its handshake runs when the
  /// Connection over it starts).
  virtual void async_accept(UniqueFunction<void(asio::error_code, ByteStreamPtr)> done) = 0;
  virtual void close() = 0;
};

/// Binds and listens on `address` (port 0: any free port). Throws CommError naming `who` if
/// it cannot, SecurityError if the security does not fit the scheme.
std::unique_ptr<Listener> listen(asio::io_context& io, const std::string& address, const Security& security,
                                 const std::string& who);

/// Connects, retrying refused connections until `timeout`; throws CommError naming the
/// address, SecurityError as listen().
ByteStreamPtr connect(asio::io_context& io, const std::string& address, const Security& security,
                      std::chrono::milliseconds timeout);

/// One connection attempt without blocking the io thread; `done` runs on `io` with the stream
/// or an error (timed_out after `timeout`). Throws at once for a malformed address or a
/// SecurityError.
void async_connect(asio::io_context& io, const std::string& address, const Security& security,
                   std::chrono::milliseconds timeout, UniqueFunction<void(asio::error_code, ByteStreamPtr)> done);

}  // namespace distrib::detail
