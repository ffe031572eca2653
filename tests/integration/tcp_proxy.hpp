#pragma once
// A loopback TCP forwarder for tests that cut a connection without killing anything: a
// client connects to the proxy, which connects on to `target` and copies bytes both ways.
#include <atomic>
#include <memory>
#include <string>

namespace distrib::test {

class TcpProxy {
 public:
  /// Listens on 127.0.0.1 on a free port and forwards to `target` ("tcp://host:port").
  explicit TcpProxy(const std::string& target);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  /// "tcp://127.0.0.1:port" to connect to instead of the target.
  std::string address() const;
  /// Closes every forwarded connection (both ends); new connections are still forwarded.
  void cut();
  /// While blocked, connections are cut and new ones are closed as soon as accepted.
  void block();
  void unblock();
  /// Connections accepted and forwarded so far.
  int forwarded() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distrib::test
