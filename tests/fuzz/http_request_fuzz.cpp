// The dashboard's HTTP request reader (src/dashboard/http.hpp) over arbitrary bytes, fed in
// chunks of a size the input chooses (its first byte). Fed whole or in chunks, it must read
// the same requests and end in the same state (the same error status, if any), and it must
// never hold much more than its limits.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "dashboard/http.hpp"

using namespace distrib::detail;

namespace {
HttpLimits small_limits() {
  HttpLimits l;
  l.max_request_line_bytes = 256;
  l.max_header_bytes = 512;
  return l;
}

struct Outcome {
  std::vector<std::string> requests;  // method, path, query and headers of each, flattened
  int error = 0;
};

Outcome read(std::string_view in, std::size_t chunk) {
  HttpRequestReader reader(small_limits());
  Outcome out;
  HttpRequest r;
  auto drain = [&] {
    for (;;) {
      const auto s = reader.next(r);
      if (s == HttpRequestReader::State::need_more) return true;
      if (s == HttpRequestReader::State::error) {
        out.error = reader.error_status();
        return false;
      }
      std::string flat = r.method + '\n' + r.path + '\n' + r.raw_query + '\n' + std::to_string(r.keep_alive);
      for (const auto& [k, v] : r.query) flat += '\n' + k + '=' + v;
      for (const auto& [k, v] : r.headers) flat += '\n' + k + ':' + v;
      out.requests.push_back(std::move(flat));
    }
  };
  while (!in.empty()) {
    const std::size_t n = std::min(chunk, in.size());
    reader.append(in.substr(0, n));
    in.remove_prefix(n);
    if (!drain()) break;
    // Undecided, it holds no more than a request could need (plus the last chunk).
    if (reader.buffered() > reader.max_buffered() + chunk) std::abort();
  }
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t chunk = 1 + data[0] % 64;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  const Outcome whole = read(in, in.size() + 1), pieces = read(in, chunk);
  if (whole.error != pieces.error || whole.requests != pieces.requests) std::abort();
  return 0;
}
