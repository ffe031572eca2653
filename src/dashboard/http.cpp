#include "dashboard/http.hpp"

#include <algorithm>

namespace distrib::detail {

namespace {

constexpr std::size_t npos = std::string::npos;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

// RFC 9110's tchar: the characters of a method or a header name.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

const std::string* HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

const std::string* HttpRequest::param(std::string_view name) const {
  for (const auto& [k, v] : query)
    if (k == name) return &v;
  return nullptr;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    auto key = percent_decode(part.substr(0, eq), true);
    auto value = percent_decode(eq == npos ? std::string_view{} : part.substr(eq + 1), true);
    if (!key || !value) return std::nullopt;
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
}

bool HttpRequestReader::started() const {
  return std::any_of(buffer_.begin(), buffer_.end(), [](char c) { return c != '\r' && c != '\n'; });
}

HttpRequestReader::State HttpRequestReader::fail(int status, std::string reason) {
  error_status_ = status;
  error_reason_ = std::move(reason);
  return State::error;
}

void HttpRequestReader::consume(std::size_t n) {
  buffer_.erase(0, n);
  line_scanned_ = head_scanned_ = 0;
  // A connection between requests holds a few bytes, not the largest request it has seen.
  if (buffer_.capacity() > 4096 && buffer_.size() < 1024) buffer_.shrink_to_fit();
}

HttpRequestReader::State HttpRequestReader::next(HttpRequest& out) {
  if (error_status_ != 0) return State::error;
  // Empty lines before a request line are ignored (RFC 9112, 2.2).
  std::size_t blank = 0;
  while (blank < buffer_.size() && (buffer_[blank] == '\r' || buffer_[blank] == '\n')) ++blank;
  if (blank > 0) consume(blank);

  const auto line_end = buffer_.find('\n', line_scanned_);
  if (line_end == npos) {
    line_scanned_ = buffer_.size();
    if (buffer_.size() > limits_.max_request_line_bytes + 1)  // + 1: its CR may be in
      return fail(414, "the request line is longer than " + std::to_string(limits_.max_request_line_bytes) + " bytes");
    return State::need_more;
  }
  const std::size_t line_bytes = line_end > 0 && buffer_[line_end - 1] == '\r' ? line_end - 1 : line_end;
  if (line_bytes > limits_.max_request_line_bytes)
    return fail(414, "the request line is longer than " + std::to_string(limits_.max_request_line_bytes) + " bytes");
  line_scanned_ = line_end;

  // The header block ends with the first empty line after the request line.
  const std::size_t head_start = line_end + 1;
  std::size_t p = std::max(head_start, head_scanned_);  // always the start of a line
  std::size_t head_end = npos;
  while (p < buffer_.size()) {
    if (buffer_[p] == '\n') {
      head_end = p + 1;
      break;
    }
    if (buffer_[p] == '\r' && p + 1 < buffer_.size() && buffer_[p + 1] == '\n') {
      head_end = p + 2;
      break;
    }
    if (buffer_[p] == '\r' && p + 1 == buffer_.size()) break;  // its LF is coming
    const auto nl = buffer_.find('\n', p);
    if (nl == npos) break;
    p = nl + 1;
  }
  head_scanned_ = p;
  const std::size_t head_bytes = (head_end == npos ? buffer_.size() : head_end) - head_start;
  if (head_bytes > limits_.max_header_bytes)
    return fail(431, "the header block is longer than " + std::to_string(limits_.max_header_bytes) + " bytes");
  if (head_end == npos) return State::need_more;
  const State s = parse(line_bytes, head_end, out);
  if (s == State::request) consume(head_end);
  return s;
}

HttpRequestReader::State HttpRequestReader::parse(std::size_t line_bytes, std::size_t head_end, HttpRequest& out) {
  out = HttpRequest{};
  const std::string_view all(buffer_);
  const std::string_view line = all.substr(0, line_bytes);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == npos ? npos : line.find(' ', sp1 + 1);
  if (sp2 == npos || line.find(' ', sp2 + 1) != npos) return fail(400, "malformed request line");
  const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                         version = line.substr(sp2 + 1);
  if (!is_token(method)) return fail(400, "malformed method");
  if (target.empty() || std::any_of(target.begin(), target.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
      }))
    return fail(400, "malformed request target");
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' || version[5] > '9' ||
      version[7] < '0' || version[7] > '9')
    return fail(400, "malformed HTTP version");
  if (version[5] != '1') return fail(505, "only HTTP/1.0 and HTTP/1.1 are served");
  out.minor_version = version[7] - '0';
  out.method = method;
  out.target = target;

  // origin-form "/path?query"; absolute-form "http://host/path?query" is taken too.
  std::string_view rest = target;
  if (rest.front() != '/') {
    const auto scheme = rest.find("://");
    if (scheme == npos || !(iequals(rest.substr(0, scheme), "http") || iequals(rest.substr(0, scheme), "https")))
      return fail(400, "the request target is not a path");
    const auto slash = rest.find('/', scheme + 3);
    rest = slash == npos ? std::string_view("/") : rest.substr(slash);
  }
  rest = rest.substr(0, rest.find('#'));
  const auto question = rest.find('?');
  out.raw_path = rest.substr(0, question);
  if (question != npos) out.raw_query = rest.substr(question + 1);
  auto path = percent_decode(out.raw_path, false);
  if (!path) return fail(400, "malformed escape in the path");
  out.path = std::move(*path);
  auto query = parse_query(out.raw_query);
  if (!query) return fail(400, "malformed escape in the query");
  out.query = std::move(*query);

  // Header lines, between the request line and the empty line.
  std::size_t at = all.find('\n') + 1;
  while (at < head_end) {
    const auto nl = all.find('\n', at);
    std::string_view h = all.substr(at, nl - at);
    at = nl + 1;
    if (!h.empty() && h.back() == '\r') h.remove_suffix(1);
    if (h.empty()) break;  // the end of the block
    if (h.front() == ' ' || h.front() == '\t') return fail(400, "folded header lines are not accepted");
    const auto colon = h.find(':');
    if (colon == npos || !is_token(h.substr(0, colon))) return fail(400, "malformed header line");
    const std::string_view value = trim(h.substr(colon + 1));
    if (std::any_of(value.begin(), value.end(), [](char c) {
          const auto u = static_cast<unsigned char>(c);
          return (u < 0x20 && c != '\t') || u == 0x7f;
        }))
      return fail(400, "control character in a header");
    std::string name(h.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), lower);
    out.headers.emplace_back(std::move(name), std::string(value));
  }

  out.keep_alive = out.minor_version >= 1;
  for (const auto& [name, value] : out.headers) {
    if (name == "content-length" && value.find_first_not_of('0') != npos)
      return fail(400, "requests with a body are not accepted");
    if (name == "content-length" && value.empty()) return fail(400, "malformed Content-Length");
    if (name == "transfer-encoding") return fail(400, "requests with a body are not accepted");
    if (name == "connection") {
      std::string_view list = value;
      while (!list.empty()) {
        const auto comma = list.find(',');
        const std::string_view option = trim(list.substr(0, comma));
        list = comma == npos ? std::string_view{} : list.substr(comma + 1);
        if (iequals(option, "close")) out.keep_alive = false;
        else if (iequals(option, "keep-alive") && out.minor_version == 0) out.keep_alive = true;
      }
    }
  }
  return State::request;
}

std::string_view http_reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "";
  }
}

std::string http_response_head(const HttpResponse& response, bool keep_alive, int minor_version) {
  // No header may end the line early (a value from a request, such as a Location).
  auto clean = [](std::string_view s) {
    std::string out(s);
    std::replace_if(out.begin(), out.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
    return out;
  };
  std::string head = "HTTP/1.1 " + std::to_string(response.status) + " ";
  head += http_reason(response.status);
  head += "\r\n";
  if (!response.content_type.empty()) head += "Content-Type: " + clean(response.content_type) + "\r\n";
  head += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  for (const auto& [name, value] : response.headers) head += clean(name) + ": " + clean(value) + "\r\n";
  if (!keep_alive) head += "Connection: close\r\n";
  else if (minor_version == 0) head += "Connection: keep-alive\r\n";
  head += "\r\n";
  return head;
}

}  // namespace distrib::detail
