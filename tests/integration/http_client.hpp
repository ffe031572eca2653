#pragma once
// A blocking HTTP/1.1 client for the dashboard tests (one request per connection, with
// deadlines), and a raw TCP peer for the tests that misbehave on purpose (partial requests,
// slow drips, oversized lines).
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace distrib::test {

struct HttpReply {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;
  /// The first header of that (lower-case) name, or "".
  std::string header(const std::string& name) const;
};

/// GET (or another method) `target` from 127.0.0.1:port with `headers`; nullopt if the
/// connection failed or no whole response came within `timeout`.
std::optional<HttpReply> http_request(int port, const std::string& target,
                                      const std::vector<std::pair<std::string, std::string>>& headers = {},
                                      const std::string& method = "GET",
                                      std::chrono::milliseconds timeout = std::chrono::seconds(10));
inline std::optional<HttpReply> http_get(int port, const std::string& target,
                                         const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  return http_request(port, target, headers);
}
/// Parses one response from the front of `text` (head, and a body of its Content-Length, or
/// all the rest without one; none with `no_body`, the answer to a HEAD); nullopt if it is not
/// all there. `used` gets its length.
std::optional<HttpReply> parse_http_reply(const std::string& text, std::size_t* used = nullptr, bool no_body = false);

/// The port of a dashboard link "http://host:PORT/status...".
int port_of_link(const std::string& link);
/// The link's path and query ("/status?token=...").
std::string target_of_link(const std::string& link);

/// A TCP connection to 127.0.0.1:port that the test drives byte by byte.
class RawPeer {
 public:
  explicit RawPeer(int port);
  ~RawPeer();
  RawPeer(const RawPeer&) = delete;
  RawPeer& operator=(const RawPeer&) = delete;
  bool connected() const { return fd_ >= 0; }
  /// Writes all of `bytes`; false if the connection broke.
  bool send(const std::string& bytes);
  /// Reads until the peer closes the connection or `timeout`; true if it closed (EOF or a
  /// reset). What came is appended to received().
  bool wait_for_close(std::chrono::milliseconds timeout);
  /// Reads until received() holds `n` whole responses or `timeout`; true if it does.
  bool wait_for_replies(std::size_t n, std::chrono::milliseconds timeout);
  /// Reads until received() holds `text` at or after `from`, or `timeout`; true if it does.
  bool wait_for_text(const std::string& text, std::size_t from, std::chrono::milliseconds timeout);
  const std::string& received() const { return received_; }

 private:
  // One read of what is there, waiting up to `timeout`: >0 bytes, 0 at EOF, -1 on a reset, -2 on timeout.
  int read_some(std::chrono::milliseconds timeout);
  int fd_ = -1;
  std::string received_;
};

}  // namespace distrib::test
