// The dashboard's HTTP request reader (src/dashboard/http.hpp), without sockets: requests
// whole, in pieces and pipelined; the limits (414 for the request line, 431 for the headers)
// decided as soon as they are passed; malformed requests (400, 505); percent-decoding of the
// path and the query; keep-alive; and the response head.
#include <gtest/gtest.h>

#include <string>

#include "dashboard/http.hpp"

namespace distrib::detail {
namespace {

using State = HttpRequestReader::State;

HttpLimits small_limits() {
  HttpLimits l;
  l.max_request_line_bytes = 64;
  l.max_header_bytes = 128;
  return l;
}

// Feeds `text` in one piece; the state after.
State read_one(HttpRequestReader& reader, const std::string& text, HttpRequest& out) {
  reader.append(text);
  return reader.next(out);
}

TEST(HttpRequestReader, ReadsARequestWithHeadersAndQuery) {
  HttpRequestReader reader{HttpLimits{}};
  HttpRequest r;
  ASSERT_EQ(read_one(reader, "GET /api/v1/tasks?since=12.5&x=a+b%21 HTTP/1.1\r\nHost: h\r\nX-Thing:  v \r\n\r\n", r),
            State::request);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/api/v1/tasks");
  EXPECT_EQ(r.raw_query, "since=12.5&x=a+b%21");
  ASSERT_NE(r.param("since"), nullptr);
  EXPECT_EQ(*r.param("since"), "12.5");
  EXPECT_EQ(*r.param("x"), "a b!");
  EXPECT_EQ(r.param("nope"), nullptr);
  ASSERT_NE(r.header("x-thing"), nullptr);
  EXPECT_EQ(*r.header("x-thing"), "v");
  EXPECT_EQ(*r.header("host"), "h");
  EXPECT_TRUE(r.keep_alive);
  EXPECT_EQ(r.minor_version, 1);
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(HttpRequestReader, DecodesAnyCharacterInThePath) {
  HttpRequestReader reader{HttpLimits{}};
  HttpRequest r;
  ASSERT_EQ(read_one(reader, "GET /api/v1/story/a%2Fb%20c%25%00%3F+ HTTP/1.1\r\n\r\n", r), State::request);
  EXPECT_EQ(r.path, std::string("/api/v1/story/a/b c%\0?+", 23));
  EXPECT_EQ(r.raw_path, "/api/v1/story/a%2Fb%20c%25%00%3F+");
  for (const char* bad : {"GET /a%2 HTTP/1.1\r\n\r\n", "GET /a%zz HTTP/1.1\r\n\r\n", "GET /a?b=%g0 HTTP/1.1\r\n\r\n"}) {
    HttpRequestReader rd{HttpLimits{}};
    EXPECT_EQ(read_one(rd, bad, r), State::error) << bad;
    EXPECT_EQ(rd.error_status(), 400) << bad;
  }
}

TEST(HttpRequestReader, ByteByByteAndPipelined) {
  HttpRequestReader reader{HttpLimits{}};
  const std::string two = "\r\nGET /one HTTP/1.1\r\nA: 1\r\n\r\nHEAD /two HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
  HttpRequest r;
  std::vector<std::string> paths;
  for (char c : two) {
    reader.append(std::string(1, c));
    for (State s; (s = reader.next(r)) == State::request;) paths.push_back(r.method + " " + r.path);
    ASSERT_NE(reader.next(r), State::error) << reader.error_reason();
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"GET /one", "HEAD /two"}));
  EXPECT_EQ(r.minor_version, 0);
  EXPECT_TRUE(r.keep_alive);
  EXPECT_FALSE(reader.started());
}

TEST(HttpRequestReader, KeepAliveFollowsTheVersionAndConnection) {
  auto keep = [](const std::string& text) {
    HttpRequestReader reader{HttpLimits{}};
    HttpRequest r;
    EXPECT_EQ(read_one(reader, text, r), State::request) << text;
    return r.keep_alive;
  };
  EXPECT_TRUE(keep("GET / HTTP/1.1\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nConnection: upgrade, close\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(keep("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
  EXPECT_TRUE(keep("GET / HTTP/1.1\nHost: x\n\n"));  // bare LFs are taken
}

TEST(HttpRequestReader, RequestLineOverTheLimitIs414AsSoonAsItIsPast) {
  const HttpLimits limits = small_limits();
  {  // exactly at the limit: fine
    HttpRequestReader reader{limits};
    HttpRequest r;
    const std::string line = "GET /" + std::string(64 - 14, 'a') + " HTTP/1.1";
    ASSERT_EQ(line.size(), 64u);
    EXPECT_EQ(read_one(reader, line + "\r\n\r\n", r), State::request);
  }
  {  // one more byte, its end in: 414
    HttpRequestReader reader{limits};
    HttpRequest r;
    EXPECT_EQ(read_one(reader, "GET /" + std::string(64 - 13, 'a') + " HTTP/1.1\r\n\r\n", r), State::error);
    EXPECT_EQ(reader.error_status(), 414);
  }
  {  // no end yet, but past the limit already: 414 without waiting for more
    HttpRequestReader reader{limits};
    HttpRequest r;
    EXPECT_EQ(read_one(reader, "GET /" + std::string(61, 'a'), r), State::error);  // 66 bytes: not a CR at 65
    EXPECT_EQ(reader.error_status(), 414);
    EXPECT_LE(reader.buffered(), reader.max_buffered());
  }
  {  // under the limit, no end: waits
    HttpRequestReader reader{limits};
    HttpRequest r;
    EXPECT_EQ(read_one(reader, "GET /" + std::string(50, 'a'), r), State::need_more);
    EXPECT_TRUE(reader.started());
  }
}

TEST(HttpRequestReader, HeaderBlockOverTheLimitIs431) {
  const HttpLimits limits = small_limits();
  HttpRequest r;
  {
    HttpRequestReader reader{limits};
    EXPECT_EQ(read_one(reader, "GET / HTTP/1.1\r\nA: " + std::string(200, 'x') + "\r\n\r\n", r), State::error);
    EXPECT_EQ(reader.error_status(), 431);
  }
  {  // many small headers, never ended
    HttpRequestReader reader{limits};
    reader.append("GET / HTTP/1.1\r\n");
    State s = State::need_more;
    for (int i = 0; i < 100 && s == State::need_more; ++i) {
      reader.append("H: 1\r\n");
      s = reader.next(r);
    }
    EXPECT_EQ(s, State::error);
    EXPECT_EQ(reader.error_status(), 431);
    EXPECT_LE(reader.buffered(), reader.max_buffered() + 6);
  }
  {  // at the limit: fine (128 bytes with the empty line)
    HttpRequestReader reader{limits};
    const std::string headers = "A: " + std::string(128 - 3 - 4, 'x') + "\r\n\r\n";
    ASSERT_EQ(headers.size(), 128u);
    EXPECT_EQ(read_one(reader, "GET / HTTP/1.1\r\n" + headers, r), State::request);
  }
}

TEST(HttpRequestReader, MalformedRequestsAre400And505) {
  struct Case {
    std::string text;
    int status;
  };
  const Case cases[] = {
      {"GET\r\n\r\n", 400},
      {"GET /\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1 x\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\n\r\n", 400},
      {"GET nopath HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.x\r\n\r\n", 400},
      {"GET / FTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 505},
      {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n: x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nA: x\x01y\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400},
      {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
  };
  for (const auto& c : cases) {
    HttpRequestReader reader{HttpLimits{}};
    HttpRequest r;
    EXPECT_EQ(read_one(reader, c.text, r), State::error) << c.text;
    EXPECT_EQ(reader.error_status(), c.status) << c.text << ": " << reader.error_reason();
    EXPECT_EQ(reader.next(r), State::error);  // it stays failed
  }
  HttpRequestReader reader{HttpLimits{}};
  HttpRequest r;
  EXPECT_EQ(read_one(reader, "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", r), State::request);
}

TEST(HttpRequestReader, AbsoluteFormTargetsAreTakenAsTheirPath) {
  HttpRequestReader reader{HttpLimits{}};
  HttpRequest r;
  ASSERT_EQ(read_one(reader, "GET http://example:8787/status?token=t HTTP/1.1\r\n\r\n", r), State::request);
  EXPECT_EQ(r.path, "/status");
  EXPECT_EQ(*r.param("token"), "t");
}

TEST(HttpQuery, ParsesPairsAndDecodes) {
  auto q = parse_query("a=1&b=&c&&d=x%3D%26y&e=+");
  ASSERT_TRUE(q);
  const std::vector<std::pair<std::string, std::string>> expected{{"a", "1"}, {"b", ""}, {"c", ""}, {"d", "x=&y"}, {"e", " "}};
  EXPECT_EQ(*q, expected);
  EXPECT_FALSE(parse_query("a=%"));
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
}

TEST(HttpResponseHead, HasLengthConnectionAndNoInjectedLines) {
  HttpResponse r{.status = 302, .body = "", .headers = {{"Location", "/x\r\nSet-Cookie: evil"}}};
  const std::string keep = http_response_head(r, true, 1);
  EXPECT_EQ(keep.rfind("HTTP/1.1 302 Found\r\n", 0), 0u) << keep;
  EXPECT_NE(keep.find("Content-Length: 0\r\n"), std::string::npos);
  EXPECT_EQ(keep.find("Connection:"), std::string::npos);  // 1.1 keeps the connection by default
  EXPECT_EQ(keep.find("\r\nSet-Cookie"), std::string::npos) << keep;
  EXPECT_EQ(keep.substr(keep.size() - 4), "\r\n\r\n");
  EXPECT_NE(http_response_head(r, false, 1).find("Connection: close\r\n"), std::string::npos);
  EXPECT_NE(http_response_head(r, true, 0).find("Connection: keep-alive\r\n"), std::string::npos);
  EXPECT_EQ(http_reason(431), "Request Header Fields Too Large");
  EXPECT_EQ(http_reason(414), "URI Too Long");
}

}  // namespace
}  // namespace distrib::detail
