#pragma once
// Addresses and the socket calls under the transport layer (transport.hpp, which everything
// outside src/comm uses). Kinds of address:
//   tcp://host:port   TCP, between hosts (and the address every daemon shows);
//   tls://host:port   the same with TLS (transport.hpp);
//   unix://@name      a Linux abstract Unix-domain socket, within one host. A LocalCluster's
//                     clients and workers reach its scheduler this way: a loopback hop then
//                     skips the TCP stack (a polling ping-pong took 12 us on a Unix socket
//                     against 19 us on loopback TCP), and the name leaves no file behind.
#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace distrib::detail {

/// A connected stream socket of either kind.
using StreamSocket = asio::generic::stream_protocol::socket;

/// True for "unix://..." addresses.
bool is_unix_address(const std::string& address);
/// "unix://@" + name, for an abstract socket called `name`.
std::string unix_address(const std::string& name);
/// A fresh abstract socket name, unique to this process and call ("distrib-<pid>-<n>-<random>").
std::string unique_unix_socket_name();

/// Splits "tcp://host:port", "tls://host:port" (or "host:port") into host and port; throws std::invalid_argument
/// (also for unix:// addresses, which have neither).
std::pair<std::string, std::uint16_t> parse_address(const std::string& address);
/// "tcp://host:port" (or another scheme's), with brackets around an IPv6 host.
std::string format_address(const std::string& host, std::uint16_t port, const std::string& scheme = "tcp");

/// Opens, binds and listens on host:port (0: any free port); returns the bound address.
/// Throws CommError naming `who` ("scheduler", "worker") on failure.
asio::ip::address listen_on(asio::ip::tcp::acceptor& acceptor, const std::string& host, std::uint16_t port,
                            const std::string& who);
/// Listens on the abstract Unix socket `name`; throws CommError naming `who` on failure.
void listen_on_unix(asio::local::stream_protocol::acceptor& acceptor, const std::string& name, const std::string& who);

/// Connects to `address` (tcp:// or unix://), retrying refused connections until `timeout`.
/// Throws CommError naming the address if it cannot connect.
StreamSocket connect_socket(asio::io_context& io, const std::string& address, std::chrono::milliseconds timeout);

/// One connection attempt to `address` without blocking the io thread: `done` gets the
/// socket, or an error (asio::error::timed_out after `timeout`). Runs `done` on `io`.
/// Throws std::invalid_argument at once for a malformed address.
void async_connect_socket(asio::io_context& io, const std::string& address, std::chrono::milliseconds timeout,
                          std::function<void(asio::error_code, StreamSocket)> done);

/// The peer of a connected socket as text ("127.0.0.1:5000", "unix:@name").
std::string describe_peer(const StreamSocket& socket);
/// This end's IP address on a TCP socket ("" on a Unix socket).
std::string local_ip(const StreamSocket& socket);
/// The address of the interface the default route leaves by ("127.0.0.1" without one).
std::string default_route_ip();
/// The IPv4 address of network interface `name` ("eth0"), or its IPv6 one if it has no
/// IPv4 (--interface, as Dask's); throws std::invalid_argument naming the interfaces there
/// are if it has neither.
std::string interface_ip(const std::string& name);

}  // namespace distrib::detail
