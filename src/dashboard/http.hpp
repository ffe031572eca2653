#pragma once
// HTTP/1.1 for the dashboard, without I/O (issue 17, parts 4 and 5): the limits a request
// must fit, a reader that turns received bytes into requests (or the error status to answer
// with), and the text of a response. The server around it is http_server.hpp.
//
// The reader keeps only the bytes received so far (nothing is allocated ahead), and refuses
// a request as soon as it is past a limit: a request line longer than
// HttpLimits::max_request_line_bytes is 414, a header block longer than max_header_bytes is
// 431, anything malformed is 400, a version other than 1.0 or 1.1 is 505. Requests carry no
// body: one announcing one (Content-Length other than 0, Transfer-Encoding) is 400, since its
// bytes would otherwise be read as the next request.
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace distrib::detail {

struct HttpLimits {
  /// The request line ("GET /path?query HTTP/1.1"), without its CRLF: longer is 414.
  std::size_t max_request_line_bytes = 8 * 1024;
  /// The header lines after it, up to and with the empty line that ends them: longer is 431.
  std::size_t max_header_bytes = 16 * 1024;
  /// A request must arrive whole within this, counted from its first byte (from the accept for
  /// a connection's first request): a peer dripping bytes is answered 408 and closed.
  std::chrono::milliseconds request_deadline{5000};
  /// A kept-alive connection with no request under way is closed after this.
  std::chrono::milliseconds idle_keep_alive{30000};
  /// A response must be taken by the peer within this, or the connection is closed.
  std::chrono::milliseconds write_deadline{10000};
  /// Connections open at once; one more is answered 503 and closed.
  std::size_t max_connections = 512;
};

struct HttpRequest {
  std::string method;  // as sent ("GET", "HEAD", ...)
  std::string target;  // as sent ("/api/v1/story/a%2Fb?x=1")
  std::string path;    // the target's path, percent-decoded ("/api/v1/story/a/b")
  std::string raw_path;   // the target's path as sent
  std::string raw_query;  // what follows '?', as sent ("" without one)
  std::vector<std::pair<std::string, std::string>> query;    // decoded ('+' is a space), in order
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case, in order
  int minor_version = 1;  // HTTP/1.<minor_version>
  bool keep_alive = true;  // what the peer asked for (Connection, and the version's default)

  /// The first header of that (lower-case) name, or nullptr.
  const std::string* header(std::string_view name) const;
  /// The first query parameter of that name, or nullptr.
  const std::string* param(std::string_view name) const;
};

/// Decodes %XX escapes (and '+' as a space when `plus_is_space`, as in a query); nullopt on a
/// malformed escape. Any byte may come out, '/' and NUL included.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);
/// "a=1&b=&c" into {{"a", "1"}, {"b", ""}, {"c", ""}}; nullopt on a malformed escape.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view query);

class HttpRequestReader {
 public:
  enum class State { need_more, request, error };
  explicit HttpRequestReader(const HttpLimits& limits) : limits_(limits) {}

  void append(std::string_view bytes) { buffer_.append(bytes); }
  /// The next request, if the bytes of one are all in: `request` (taken off the buffer; bytes
  /// after it stay for the next call), `need_more`, or `error` (error_status()).
  State next(HttpRequest& out);
  /// Whether part of a request has arrived (empty lines before a request do not count).
  bool started() const;
  std::size_t buffered() const { return buffer_.size(); }
  /// At most this many bytes need be buffered to decide (request line and header block).
  std::size_t max_buffered() const { return limits_.max_request_line_bytes + limits_.max_header_bytes + 2; }
  int error_status() const { return error_status_; }
  const std::string& error_reason() const { return error_reason_; }

 private:
  State fail(int status, std::string reason);
  State parse(std::size_t line_end, std::size_t head_end, HttpRequest& out);
  void consume(std::size_t n);

  HttpLimits limits_;
  std::string buffer_;
  std::size_t line_scanned_ = 0;  // no '\n' before this offset: the request line's end is not there
  std::size_t head_scanned_ = 0;  // no end of the header block before this offset
  int error_status_ = 0;
  std::string error_reason_;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // more headers (Cache-Control, Location, ...)
  /// If set, fills in the response on one of the server's render threads, not its io thread
  /// (JSON of a snapshot, a story that waits on the scheduler).
  std::function<void(HttpResponse&)> render;
  /// Close the connection after this response.
  bool close = false;
};

/// "Not Found" for 404, and so on ("" for a status it does not know).
std::string_view http_reason(int status);
/// The status line and headers, with Content-Length and Connection; the body is sent after.
std::string http_response_head(const HttpResponse& response, bool keep_alive, int minor_version);

}  // namespace distrib::detail
