// The token handshake's pieces (comm/auth.hpp): hellos, proofs that differ by side, nonce and
// token, and token files.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "comm/auth.hpp"

namespace distrib::detail::auth {
namespace {

TEST(Auth, AHelloCarriesItsNonceAndAnythingElseIsNotOne) {
  auto n = fresh_nonce();
  EXPECT_NE(n, fresh_nonce()) << "nonces are random";
  auto hello = make_hello(n);
  auto back = read_hello(hello);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, n);
  hello[0] = std::byte{'X'};
  EXPECT_FALSE(read_hello(hello));
}

TEST(Auth, ProofsDependOnTheTokenTheSideAndBothNonces) {
  auto c = fresh_nonce(), a = fresh_nonce();
  auto p = make_proof("secret", Side::connector, c, a);
  EXPECT_TRUE(proofs_equal(p, make_proof("secret", Side::connector, c, a)));
  EXPECT_FALSE(proofs_equal(p, make_proof("secret", Side::acceptor, c, a))) << "a reflected proof is refused";
  EXPECT_FALSE(proofs_equal(p, make_proof("secreT", Side::connector, c, a)));
  EXPECT_FALSE(proofs_equal(p, make_proof("secret", Side::connector, a, c)));
  EXPECT_FALSE(proofs_equal(p, make_proof("secret", Side::connector, c, fresh_nonce())));
}

TEST(Auth, TokenFilesGiveTheirFirstLineTrimmedAndEmptyOnesAreRefused) {
  char tmpl[] = "/tmp/distrib-auth-unit-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ::close(fd);
  std::ofstream(tmpl) << "  abc123 \nsecond line\n";
  EXPECT_EQ(read_token_file(tmpl), "abc123");
  std::ofstream(tmpl) << "   \n";
  EXPECT_THROW(read_token_file(tmpl), std::runtime_error);
  std::filesystem::remove(tmpl);
  EXPECT_THROW(read_token_file(tmpl), std::runtime_error);
  auto t = generate_token();
  EXPECT_EQ(t.size(), 64u);
  EXPECT_EQ(t.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(Auth, TheProcessTokenComesFromTheEnvironmentUnlessSet) {
  ::setenv("DISTRIB_AUTH_TOKEN", "from-env", 1);
  EXPECT_EQ(process_token().value_or(""), "from-env");
  set_process_token("set");
  EXPECT_EQ(process_token().value_or(""), "set");
  set_process_token("");  // explicitly none, whatever the environment says
  EXPECT_FALSE(process_token());
  reset_process_token();  // and back to the environment
  EXPECT_EQ(process_token().value_or(""), "from-env");
  ::unsetenv("DISTRIB_AUTH_TOKEN");
}

}  // namespace
}  // namespace distrib::detail::auth
