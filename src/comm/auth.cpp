#include "comm/auth.hpp"
#include "distrib/config.hpp"

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <stdexcept>

namespace distrib::detail::auth {

namespace {
constexpr char kMagic[8] = {'D', 'S', 'T', 'A', 'U', 'T', 'H', '1'};
constexpr char kLabel[] = "distrib-auth-1";

std::mutex& token_mutex() {
  static std::mutex m;
  return m;
}
std::optional<std::string>& explicit_token() {
  static std::optional<std::string> t;
  return t;
}

// OpenSSL's libcrypto, loaded the first time a token is used: a process without one (the
// default) does not map it, and stays small (an idle worker: 8 MB; 9.8 MB with libcrypto).
struct Crypto {
  decltype(&::HMAC) hmac = nullptr;
  decltype(&::EVP_sha256) sha256 = nullptr;
  decltype(&::RAND_bytes) rand_bytes = nullptr;
  decltype(&::CRYPTO_memcmp) memcmp = nullptr;
};

const Crypto& crypto() {
  static const Crypto c = [] {
    Crypto r;
    void* lib = ::dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!lib) throw std::runtime_error(std::string("authentication needs OpenSSL's libcrypto.so.3: ") + ::dlerror());
    r.hmac = reinterpret_cast<decltype(r.hmac)>(::dlsym(lib, "HMAC"));
    r.sha256 = reinterpret_cast<decltype(r.sha256)>(::dlsym(lib, "EVP_sha256"));
    r.rand_bytes = reinterpret_cast<decltype(r.rand_bytes)>(::dlsym(lib, "RAND_bytes"));
    r.memcmp = reinterpret_cast<decltype(r.memcmp)>(::dlsym(lib, "CRYPTO_memcmp"));
    if (!r.hmac || !r.sha256 || !r.rand_bytes || !r.memcmp)
      throw std::runtime_error("libcrypto.so.3 lacks HMAC, EVP_sha256, RAND_bytes or CRYPTO_memcmp");
    return r;
  }();
  return c;
}
}  // namespace

std::optional<std::string> process_token() {
  std::lock_guard lock(token_mutex());
  if (explicit_token()) return explicit_token()->empty() ? std::nullopt : explicit_token();
  std::string token;
  try {
    token = config::get("security.token");  // DISTRIB_AUTH_TOKEN, or the DISTRIB_CONFIG file
  } catch (const std::invalid_argument&) {
    // A broken configuration is reported where it is read for settings; here the variable
    // alone still counts.
    if (const char* env = std::getenv("DISTRIB_AUTH_TOKEN")) token = env;
  }
  if (token.empty()) return std::nullopt;
  return token;
}

void set_process_token(const std::string& token) {
  std::lock_guard lock(token_mutex());
  explicit_token() = token;
}

void reset_process_token() {
  std::lock_guard lock(token_mutex());
  explicit_token().reset();
}

std::string read_token_file(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) throw std::runtime_error("cannot read the auth token file " + path);
  auto first = line.find_first_not_of(" \t\r\n");
  auto last = line.find_last_not_of(" \t\r\n");
  if (first == std::string::npos) throw std::runtime_error("the auth token file " + path + " holds no token");
  return line.substr(first, last - first + 1);
}

std::string generate_token() {
  unsigned char raw[32];
  if (crypto().rand_bytes(raw, sizeof raw) != 1) throw std::runtime_error("cannot make a random token (RAND_bytes)");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

Nonce fresh_nonce() {
  Nonce n;
  if (crypto().rand_bytes(reinterpret_cast<unsigned char*>(n.data()), static_cast<int>(n.size())) != 1)
    throw std::runtime_error("cannot make a random nonce (RAND_bytes)");
  return n;
}

Hello make_hello(const Nonce& nonce) {
  Hello h;
  std::memcpy(h.data(), kMagic, sizeof kMagic);
  std::memcpy(h.data() + sizeof kMagic, nonce.data(), nonce.size());
  return h;
}

std::optional<Nonce> read_hello(std::span<const std::byte, kHelloBytes> hello) {
  if (std::memcmp(hello.data(), kMagic, sizeof kMagic) != 0) return std::nullopt;
  Nonce n;
  std::memcpy(n.data(), hello.data() + sizeof kMagic, n.size());
  return n;
}

Proof make_proof(const std::string& token, Side side, const Nonce& connector, const Nonce& acceptor) {
  unsigned char msg[sizeof kLabel + 1 + 2 * kNonceBytes];
  std::memcpy(msg, kLabel, sizeof kLabel);  // with its NUL: the label ends unambiguously
  msg[sizeof kLabel] = static_cast<unsigned char>(side);
  std::memcpy(msg + sizeof kLabel + 1, connector.data(), kNonceBytes);
  std::memcpy(msg + sizeof kLabel + 1 + kNonceBytes, acceptor.data(), kNonceBytes);
  Proof p;
  unsigned int len = 0;
  if (!crypto().hmac(crypto().sha256(), token.data(), static_cast<int>(token.size()), msg, sizeof msg,
            reinterpret_cast<unsigned char*>(p.data()), &len) ||
      len != p.size())
    throw std::runtime_error("HMAC-SHA256 failed");
  return p;
}

bool proofs_equal(const Proof& a, const Proof& b) { return crypto().memcmp(a.data(), b.data(), a.size()) == 0; }

namespace {
Proof hmac_sha256(const void* key, std::size_t key_size, const std::string& message) {
  Proof p;
  unsigned int len = 0;
  if (!crypto().hmac(crypto().sha256(), key, static_cast<int>(key_size), reinterpret_cast<const unsigned char*>(message.data()),
                     message.size(), reinterpret_cast<unsigned char*>(p.data()), &len) ||
      len != p.size())
    throw std::runtime_error("HMAC-SHA256 failed");
  return p;
}
}  // namespace

bool tokens_equal(const std::string& a, const std::string& b) {
  static const Nonce key = fresh_nonce();
  return proofs_equal(hmac_sha256(key.data(), key.size(), a), hmac_sha256(key.data(), key.size(), b));
}

std::string dashboard_cookie(const std::string& token) {
  const Proof p = hmac_sha256(token.data(), token.size(), "distrib-dashboard-cookie-1");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::byte b : p) {
    const auto c = static_cast<unsigned char>(b);
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace distrib::detail::auth
