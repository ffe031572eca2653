#include "http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace distrib::test {

namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

}  // namespace

std::string HttpReply::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

std::optional<HttpReply> parse_http_reply(const std::string& text, std::size_t* used, bool no_body) {
  const auto end = text.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  HttpReply r;
  const std::string head = text.substr(0, end);
  const auto first = head.find("\r\n");
  const std::string status_line = head.substr(0, first);
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) return std::nullopt;
  r.status = std::stoi(status_line.substr(9, 3));
  for (std::size_t at = first == std::string::npos ? head.size() : first + 2; at < head.size();) {
    auto nl = head.find("\r\n", at);
    if (nl == std::string::npos) nl = head.size();
    const std::string line = head.substr(at, nl - at);
    at = nl + 2;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    r.headers.emplace_back(lower(line.substr(0, colon)), value);
  }
  const std::size_t body_at = end + 4;
  const std::string length = r.header("content-length");
  std::size_t n = text.size() - body_at;
  if (no_body) {
    n = 0;
  } else if (!length.empty()) {
    n = std::stoul(length);
    if (text.size() - body_at < n) return std::nullopt;
  }
  r.body = text.substr(body_at, n);
  if (used) *used = body_at + n;
  return r;
}

std::optional<HttpReply> http_request(int port, const std::string& target,
                                      const std::vector<std::pair<std::string, std::string>>& headers,
                                      const std::string& method, std::chrono::milliseconds timeout) {
  RawPeer peer(port);
  if (!peer.connected()) return std::nullopt;
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) request += k + ": " + v + "\r\n";
  request += "\r\n";
  if (!peer.send(request)) return std::nullopt;
  peer.wait_for_close(timeout);  // the server closes after its answer (Connection: close)
  return parse_http_reply(peer.received(), nullptr, method == "HEAD");
}

int port_of_link(const std::string& link) {
  const auto slashes = link.find("//");
  const auto colon = link.find(':', link.find(']', slashes) == std::string::npos ? slashes : link.find(']', slashes));
  return std::stoi(link.substr(colon + 1, link.find('/', colon) - colon - 1));
}

std::string target_of_link(const std::string& link) { return link.substr(link.find('/', link.find("//") + 2)); }

RawPeer::RawPeer(int port) : fd_(connect_to(port)) {}
RawPeer::~RawPeer() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawPeer::send(const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

int RawPeer::read_some(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(timeout.count(), 0)));
  if (ready == 0) return -2;
  if (ready < 0) return errno == EINTR ? -2 : -1;
  char buffer[16384];
  const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
  if (n < 0) return errno == EINTR || errno == EAGAIN ? -2 : -1;
  received_.append(buffer, static_cast<std::size_t>(n));
  return static_cast<int>(n);
}

bool RawPeer::wait_for_close(std::chrono::milliseconds timeout) {
  if (fd_ < 0) return true;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    const int n = read_some(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (n == 0 || n == -1) return true;
  }
  return false;
}

bool RawPeer::wait_for_text(const std::string& text, std::size_t from, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (received_.find(text, std::min(from, received_.size())) == std::string::npos) {
    if (Clock::now() >= deadline) return false;
    const int got = read_some(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (got == 0 || got == -1) return received_.find(text, std::min(from, received_.size())) != std::string::npos;
  }
  return true;
}

bool RawPeer::wait_for_replies(std::size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto count = [&] {
    std::size_t found = 0, at = 0, used = 0;
    while (auto r = parse_http_reply(received_.substr(at), &used)) {
      ++found;
      at += used;
      if (r->header("content-length").empty()) break;
    }
    return found;
  };
  while (count() < n) {
    if (Clock::now() >= deadline) return false;
    const int got = read_some(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (got == 0 || got == -1) return count() >= n;
  }
  return true;
}

}  // namespace distrib::test
