#pragma once
// Authentication by a shared token (issue 17, part 3): before either side of a connection
// parses a message, both prove they hold the token, by an HMAC-SHA256 challenge-response
// that never sends the token itself.
//
//   each side sends   hello = "DSTAUTH1" + a fresh 32-byte nonce
//   each side sends   proof = HMAC(token, "distrib-auth-1" | side | connector's nonce |
//                                          acceptor's nonce)        (side: 'C' or 'A')
//
// and checks the peer's proof in constant time. The side letter stops a peer reflecting a
// proof back; fresh nonces stop replays. A peer that fails is closed with a logged reason
// and has learned nothing but a nonce. Without a token nothing is exchanged (the protocol
// as before); a side with a token and one without fail each other's first read.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace distrib::detail::auth {

inline constexpr std::size_t kNonceBytes = 32;
inline constexpr std::size_t kHelloBytes = 8 + kNonceBytes;
inline constexpr std::size_t kProofBytes = 32;
using Nonce = std::array<std::byte, kNonceBytes>;
using Proof = std::array<std::byte, kProofBytes>;
using Hello = std::array<std::byte, kHelloBytes>;

enum class Side : char { connector = 'C', acceptor = 'A' };

/// The token this process's connections use: the one set with set_process_token, else
/// DISTRIB_AUTH_TOKEN's value; nullopt (no authentication) if neither or empty.
std::optional<std::string> process_token();
/// Sets (or, with "", clears) the process's token; before any connection is made.
void set_process_token(const std::string& token);
/// Forgets what set_process_token said: the environment decides again.
void reset_process_token();
/// Reads a token file (dscheduler/dworker --auth-token-file): its first line, without
/// surrounding whitespace. Throws std::runtime_error naming the file if it cannot be read
/// or holds no token.
std::string read_token_file(const std::string& path);
/// A new random token (64 hex digits), e.g. for a LocalCluster or `dscheduler --auth-token-file`.
std::string generate_token();

Nonce fresh_nonce();
Hello make_hello(const Nonce& nonce);
/// The peer's nonce, or nullopt if `hello` is not an auth hello.
std::optional<Nonce> read_hello(std::span<const std::byte, kHelloBytes> hello);
Proof make_proof(const std::string& token, Side side, const Nonce& connector, const Nonce& acceptor);
/// Constant-time comparison.
bool proofs_equal(const Proof& a, const Proof& b);

/// Whether two tokens are the same, in time that depends on neither (nor on their lengths):
/// the HMACs of both under a key drawn for this process are compared with CRYPTO_memcmp.
/// For a token presented over HTTP (the dashboard).
bool tokens_equal(const std::string& a, const std::string& b);
/// The dashboard's cookie for `token` (64 hex digits): an HMAC of it, so that a browser keeps
/// a credential for the dashboard only, not the token that lets a peer join the cluster.
std::string dashboard_cookie(const std::string& token);

}  // namespace distrib::detail::auth
