// TLS streams (libdistrib_tls.so through comm/tls.hpp) over real loopback TCP sockets in one
// io_context: mutual TLS 1.3 handshakes that pass and ones that must not, bytes both ways,
// and plaintext peers on either side.
#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "comm/tls.hpp"
#include "stream_test_support.hpp"

namespace distrib::detail {
namespace {

using namespace std::chrono_literals;
using test::SocketPair;
using test::tcp_pair;
using test::write_all;

bool run_until(asio::io_context& io, const std::function<bool()>& done) { return test::run_until(io, done, 10s); }




// `trust`'s CA, `own`'s certificate and key.
Security security(const TemporaryCredentials& trust, const TemporaryCredentials& own) {
  Security s;
  s.tls_ca_file = trust.ca_pem;
  s.tls_cert = own.cert_pem;
  s.tls_key = own.key_pem;
  return s;
}

TemporaryCredentials fresh() { return tls_backend().make_temporary(-60, 3600); }


// Reads until `into` is full.
void read_all(ByteStream& s, std::shared_ptr<std::string> into, std::size_t at, std::function<void(asio::error_code)> done) {
  if (at == into->size()) return done({});
  s.async_read_some(asio::buffer(into->data() + at, into->size() - at),
                    [&s, into, at, done = std::move(done)](asio::error_code ec, std::size_t n) mutable {
                      if (ec) return done(ec);
                      read_all(s, into, at + n, std::move(done));
                    });
}

struct Handshakes {
  std::optional<asio::error_code> client, server;
  bool done() const { return client && server; }
};

// Both handshakes of a pair, the client's context trusting and showing `c`, the server's `s`.
struct TlsPair {
  asio::io_context io;
  ByteStreamPtr client, server;
  Handshakes result;

  TlsPair(const Security& c, const Security& s) {
    auto [cs, ss] = tcp_pair(io);
    client = tls_backend().make_context(c, TlsRole::client)->wrap(std::move(cs), TlsRole::client);
    server = tls_backend().make_context(s, TlsRole::server)->wrap(std::move(ss), TlsRole::server);
    client->async_handshake([this](asio::error_code ec) { result.client = ec; });
    server->async_handshake([this](asio::error_code ec) { result.server = ec; });
    EXPECT_TRUE(run_until(io, [this] { return result.done(); })) << "the handshakes did not end";
  }

  // What a read of the client ends with (in TLS 1.3 the client's handshake is over before the
  // server has checked its certificate: a refusal shows on the client's first read).
  asio::error_code client_read() {
    std::optional<asio::error_code> read;
    auto buffer = std::make_shared<std::string>(1, '\0');
    read_all(*client, buffer, 0, [&](asio::error_code ec) { read = ec; });
    if (!run_until(io, [&] { return read.has_value(); })) return asio::error::timed_out;
    return *read;
  }
};

TEST(Tls, AHandshakeThenBytesBothWays) {
  const Security both = Security::temporary();
  TlsPair pair(both, both);
  ASSERT_FALSE(*pair.result.client) << pair.result.client->message();
  ASSERT_FALSE(*pair.result.server) << pair.result.server->message();
  EXPECT_EQ(pair.client->local_ip(), "127.0.0.1");
  EXPECT_EQ(pair.server->peer().rfind("127.0.0.1:", 0), 0u) << pair.server->peer();

  // Parts of every size around a record's 16 KiB, each way at once, some MB in all.
  auto make = [](std::size_t seed, std::vector<std::size_t> sizes) {
    std::string bytes;
    for (std::size_t size : sizes)
      for (std::size_t i = 0; i < size; ++i) bytes += static_cast<char>((i * 131 + seed++) & 255);
    return std::make_pair(bytes, sizes);
  };
  const auto up = make(7, {8, 100000, 3, 20000, 1, 16384, 16383, 16385, 5, 0, 1 << 20, 8, 8, 8, 2 << 20});
  const auto down = make(11, {1, 2, 3, 16384, 40000, 8, 3 << 20, 9});
  auto parts_of = [](const std::pair<std::string, std::vector<std::size_t>>& m) {
    auto parts = std::make_shared<std::vector<asio::const_buffer>>();
    std::size_t at = 0;
    for (std::size_t size : m.second) parts->push_back(asio::buffer(m.first.data() + at, size)), at += size;
    return parts;
  };
  auto got_up = std::make_shared<std::string>(up.first.size(), '\0');
  auto got_down = std::make_shared<std::string>(down.first.size(), '\0');
  int finished = 0;
  auto step = [&](asio::error_code ec) {
    EXPECT_FALSE(ec) << ec.message();
    ++finished;
  };
  write_all(*pair.client, parts_of(up), 0, step);
  write_all(*pair.server, parts_of(down), 0, step);
  read_all(*pair.server, got_up, 0, step);
  read_all(*pair.client, got_down, 0, step);
  ASSERT_TRUE(run_until(pair.io, [&] { return finished == 4; }));
  EXPECT_TRUE(*got_up == up.first) << "client to server";
  EXPECT_TRUE(*got_down == down.first) << "server to client";

  // A close is an end of stream to the peer (no close_notify: as a socket's close).
  pair.client->close();
  auto byte = std::make_shared<std::string>(1, '\0');
  std::optional<asio::error_code> end;
  read_all(*pair.server, byte, 0, [&](asio::error_code ec) { end = ec; });
  ASSERT_TRUE(run_until(pair.io, [&] { return end.has_value(); }));
  EXPECT_EQ(*end, asio::error::eof) << end->message();
}

TEST(Tls, AClosedStreamAbortsItsPendingRead) {
  const Security both = Security::temporary();
  TlsPair pair(both, both);
  ASSERT_FALSE(*pair.result.client);
  std::optional<asio::error_code> read;
  read_all(*pair.client, std::make_shared<std::string>(1, '\0'), 0, [&](asio::error_code ec) { read = ec; });
  pair.io.poll();
  pair.client->close();
  ASSERT_TRUE(run_until(pair.io, [&] { return read.has_value(); }));
  EXPECT_EQ(*read, asio::error::operation_aborted) << read->message();
}

// The server refuses the client's certificate: its handshake fails saying why, and the
// client sees the refusal by its handshake or first read.
void expect_server_refuses(TlsPair& pair, const std::string& reason) {
  ASSERT_TRUE(*pair.result.server) << "the server accepted";
  std::cout << "server: " << pair.result.server->message() << "\n";
  EXPECT_NE(pair.result.server->message().find(reason), std::string::npos) << pair.result.server->message();
  pair.server->close();
  const asio::error_code client = *pair.result.client ? *pair.result.client : pair.client_read();
  std::cout << "client: " << client.message() << "\n";
  EXPECT_TRUE(client);
  EXPECT_NE(client, asio::error::timed_out);
}

TEST(Tls, AClientWithACertificateOfAnotherCaIsRefused) {
  const auto cluster = fresh(), other = fresh();
  TlsPair pair(security(cluster, other), security(cluster, cluster));
  expect_server_refuses(pair, "certificate was refused: unable to get local issuer certificate");
}

TEST(Tls, AServerWithACertificateOfAnotherCaIsRefused) {
  const auto cluster = fresh(), other = fresh();
  TlsPair pair(security(cluster, cluster), security(cluster, other));
  ASSERT_TRUE(*pair.result.client) << "the client accepted";
  std::cout << "client: " << pair.result.client->message() << "\n";
  EXPECT_NE(pair.result.client->message().find("certificate was refused: unable to get local issuer certificate"),
            std::string::npos)
      << pair.result.client->message();
  ASSERT_TRUE(*pair.result.server);
  std::cout << "server: " << pair.result.server->message() << "\n";
  EXPECT_NE(pair.result.server->message().find("refused our certificate"), std::string::npos)
      << pair.result.server->message();
}

TEST(Tls, AnExpiredClientCertificateIsRefused) {
  const auto cluster = fresh();
  const auto expired = tls_backend().make_temporary(-7200, -3600);
  TlsPair pair(security(cluster, expired), security(expired, cluster));
  expect_server_refuses(pair, "certificate has expired");
}

TEST(Tls, AClientWithoutACertificateIsRefused) {
  const auto cluster = fresh();
  asio::io_context io;
  auto [cs, ss] = tcp_pair(io);
  auto server = tls_backend().make_context(security(cluster, cluster), TlsRole::server)->wrap(std::move(ss), TlsRole::server);
  asio::ssl::context bare(asio::ssl::context::tls_client);  // no certificate, trusts anything
  SSL_CTX_set_min_proto_version(bare.native_handle(), TLS1_3_VERSION);
  bare.set_verify_mode(asio::ssl::verify_none);
  asio::ssl::stream<StreamSocket> client(std::move(cs), bare);
  Handshakes result;
  client.async_handshake(asio::ssl::stream_base::client, [&](asio::error_code ec) { result.client = ec; });
  server->async_handshake([&](asio::error_code ec) { result.server = ec; });
  ASSERT_TRUE(run_until(io, [&] { return result.done(); }));
  ASSERT_TRUE(*result.server) << "the server accepted a client without a certificate";
  std::cout << "server: " << result.server->message() << "\n";
  EXPECT_NE(result.server->message().find("peer did not return a certificate"), std::string::npos)
      << result.server->message();
}

TEST(Tls, PlaintextIntoATlsServerFailsItsHandshake) {
  const auto cluster = fresh();
  asio::io_context io;
  auto [cs, ss] = tcp_pair(io);
  auto server = tls_backend().make_context(security(cluster, cluster), TlsRole::server)->wrap(std::move(ss), TlsRole::server);
  const std::string hello = "DSTAUTH1" + std::string(32, 'n');  // a tcp:// peer's token hello
  asio::write(cs, asio::buffer(hello));
  std::optional<asio::error_code> result;
  server->async_handshake([&](asio::error_code ec) { result = ec; });
  ASSERT_TRUE(run_until(io, [&] { return result.has_value(); }));
  ASSERT_TRUE(*result);
  std::cout << "server: " << result->message() << "\n";
  EXPECT_NE(result->message().find("the peer does not speak TLS"), std::string::npos) << result->message();
}

TEST(Tls, ATlsClientAgainstAPlaintextPeerFailsItsHandshake) {
  const auto cluster = fresh();
  for (const bool peer_writes : {true, false}) {
    asio::io_context io;
    auto [cs, ss] = tcp_pair(io);
    auto client = tls_backend().make_context(security(cluster, cluster), TlsRole::client)->wrap(std::move(cs), TlsRole::client);
    std::optional<asio::error_code> result;
    client->async_handshake([&](asio::error_code ec) { result = ec; });
    io.poll();  // the ClientHello goes out
    if (peer_writes) asio::write(ss, asio::buffer(std::string("DSTAUTH1") + std::string(32, 'n')));
    else ss.close();
    ASSERT_TRUE(run_until(io, [&] { return result.has_value(); }));
    ASSERT_TRUE(*result);
    std::cout << "client: " << result->message() << "\n";
    EXPECT_NE(result->message().find(peer_writes ? "the peer does not speak TLS" : "the peer closed the connection"),
              std::string::npos)
        << result->message();
  }
}

}  // namespace
}  // namespace distrib::detail
