#include "comm/transport.hpp"

#include <asio/post.hpp>

#include <map>
#include <mutex>
#include <stdexcept>
#include <tuple>

#include "comm/inproc_stream.hpp"
#include "comm/tls.hpp"
#include "distrib/errors.hpp"

namespace distrib::detail {
namespace {

// One context per TLS settings and role for the life of the process: loading and checking
// the files happens once, not per connection.
std::shared_ptr<TlsContext> tls_context(const Security& security, TlsRole role) {
  using Key = std::tuple<std::string, std::string, std::string, TlsRole>;
  static std::mutex mutex;
  static std::map<Key, std::shared_ptr<TlsContext>> contexts;
  Key key{security.tls_ca_file, security.tls_cert, security.tls_key, role};
  std::lock_guard lock(mutex);
  auto& context = contexts[key];
  if (!context) context = tls_backend().make_context(security, role);
  return context;
}

// Checks that `scheme` and `security` agree; true when streams must be TLS.
bool wants_tls(const std::string& scheme, const std::string& address, const Security& security) {
  if (scheme == "tls" && !security.has_tls())
    throw SecurityError("'" + address +
                        "' is a TLS address, but no TLS files are set (Security's tls_ca_file, tls_cert and tls_key; "
                        "--tls-ca-file, --tls-cert and --tls-key)");
  if (scheme == "tcp" && security.has_tls())
    throw SecurityError("'" + address + "' is plaintext TCP, but this process uses TLS: use tls://" +
                        address.substr(address.find("://") == std::string::npos ? 0 : address.find("://") + 3));
  return security.has_tls();
}

ByteStreamPtr wrap(StreamSocket socket, bool tls, const Security& security, TlsRole role) {
  auto stream = tls ? tls_context(security, role)->wrap(std::move(socket), role) : make_socket_stream(std::move(socket));
  if (!security.token.empty()) stream->set_auth_token(security.token);
  return stream;
}

template <class Acceptor>
class SocketListener final : public Listener {
 public:
  SocketListener(asio::io_context& io, std::string address, bool tls, Security security)
      : acceptor_(io), address_(std::move(address)), tls_(tls), security_(std::move(security)) {}
  Acceptor& acceptor() { return acceptor_; }
  void set_address(std::string a) { address_ = std::move(a); }

  const std::string& address() const override { return address_; }
  asio::ip::address bound_ip() const override {
    if constexpr (std::is_same_v<Acceptor, asio::ip::tcp::acceptor>) {
      asio::error_code ec;
      return acceptor_.local_endpoint(ec).address();
    }
    return {};
  }
  std::uint16_t port() const override {
    if constexpr (std::is_same_v<Acceptor, asio::ip::tcp::acceptor>) {
      asio::error_code ec;
      return acceptor_.local_endpoint(ec).port();
    }
    return 0;
  }
  void async_accept(UniqueFunction<void(asio::error_code, ByteStreamPtr)> done) override {
    acceptor_.async_accept([this, done = std::move(done)](asio::error_code ec, typename Acceptor::protocol_type::socket s) mutable {
      if (ec) return done(ec, nullptr);
      ByteStreamPtr stream;
      try {
        stream = wrap(StreamSocket(std::move(s)), tls_, security_, TlsRole::server);
      } catch (const std::exception&) {
        return done(asio::error::no_protocol_option, nullptr);  // the context was checked at listen()
      }
      done(ec, std::move(stream));
    });
  }
  void close() override {
    asio::error_code ec;
    acceptor_.close(ec);
  }

 private:
  Acceptor acceptor_;
  std::string address_;
  bool tls_;
  Security security_;
};

}  // namespace

std::string address_scheme(const std::string& address) {
  auto sep = address.find("://");
  if (sep == std::string::npos) return "tcp";
  auto scheme = address.substr(0, sep);
  if (scheme == "tcp" || scheme == "tls" || scheme == "unix" || scheme == "inproc") return scheme;
  throw std::invalid_argument("bad address '" + address + "': unknown scheme '" + scheme +
                              "://' (expected tcp://, tls://, unix:// or inproc://)");
}

std::string listen_scheme(const Security& security) { return security.has_tls() ? "tls" : "tcp"; }

std::unique_ptr<Listener> listen(asio::io_context& io, const std::string& address, const Security& security,
                                 const std::string& who) {
  const auto scheme = address_scheme(address);
  if (scheme == "inproc") return listen_inproc(io, address, security.token);
  const bool tls = wants_tls(scheme, address, security);
  if (tls) tls_context(security, TlsRole::server);  // bad files fail here, before anyone connects
  if (scheme == "unix") {
    auto l = std::make_unique<SocketListener<asio::local::stream_protocol::acceptor>>(io, address, tls, security);
    listen_on_unix(l->acceptor(), address.substr(std::string("unix://@").size()), who);
    return l;
  }
  auto [host, port] = parse_address(address);
  auto l = std::make_unique<SocketListener<asio::ip::tcp::acceptor>>(io, address, tls, security);
  listen_on(l->acceptor(), host, port, who);
  l->set_address(format_address(host, l->port(), scheme));
  return l;
}

ByteStreamPtr connect(asio::io_context& io, const std::string& address, const Security& security,
                      std::chrono::milliseconds timeout) {
  if (address_scheme(address) == "inproc") return connect_inproc(io, address, security.token);
  const bool tls = wants_tls(address_scheme(address), address, security);
  return wrap(connect_socket(io, address, timeout), tls, security, TlsRole::client);
}

void async_connect(asio::io_context& io, const std::string& address, const Security& security,
                   std::chrono::milliseconds timeout, UniqueFunction<void(asio::error_code, ByteStreamPtr)> done) {
  if (address_scheme(address) == "inproc") {
    ByteStreamPtr stream;
    asio::error_code ec;
    try {
      stream = connect_inproc(io, address, security.token);
    } catch (const CommError&) {
      ec = asio::error::connection_refused;
    }
    asio::post(io, [done = std::move(done), ec, stream = std::move(stream)]() mutable { done(ec, std::move(stream)); });
    return;
  }
  const bool tls = wants_tls(address_scheme(address), address, security);
  if (tls) tls_context(security, TlsRole::client);
  auto shared_done = std::make_shared<decltype(done)>(std::move(done));
  async_connect_socket(io, address, timeout, [shared_done, tls, security](asio::error_code ec, StreamSocket socket) {
    if (ec) return (*shared_done)(ec, nullptr);
    (*shared_done)(ec, wrap(std::move(socket), tls, security, TlsRole::client));
  });
}

}  // namespace distrib::detail
