#pragma once
// inproc://name: connections between threads of one process without sockets (issue 17,
// part 1), as Dask's inproc comm. A LocalCluster with processes = false uses it between its
// client, scheduler and workers: no system calls and no kernel buffers.
//
// A write completes at once into up to 256 KiB of buffer, as into a socket's; past that it
// waits until the peer reads, and the read copies what fits from the writer's buffers,
// completing both: large messages cross in one copy, and a slow reader holds the writer
// back as a full socket would.
#include <asio/io_context.hpp>

#include <memory>
#include <string>

#include "comm/byte_stream.hpp"

namespace distrib::detail {

class Listener;

/// Listens on `address` ("inproc://name") in this process; accepted streams prove `token`
/// (empty: the process's). Throws CommError if another listener has the name.
std::unique_ptr<Listener> listen_inproc(asio::io_context& io, const std::string& address, const std::string& token);
/// Connects to this process's listener at `address`; throws CommError (connection refused)
/// if there is none.
ByteStreamPtr connect_inproc(asio::io_context& io, const std::string& address, const std::string& token);
/// A name no listener of this process has used ("inproc://distrib-<pid>-<n>").
std::string unique_inproc_address();

}  // namespace distrib::detail
