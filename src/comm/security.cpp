// Security's two ways of being made (include/distrib/security.hpp).
#include "distrib/security.hpp"

#include <cstdlib>
#include <exception>

#include "comm/auth.hpp"
#include "comm/tls.hpp"
#include "distrib/errors.hpp"

namespace distrib {

namespace {
// A minute's slack before now, for clocks of one machine's processes read at different
// moments (and of other machines, a little); a month after, for a long-running cluster.
constexpr long kTemporaryNotBefore = -60;
constexpr long kTemporaryNotAfter = 30L * 24 * 3600;

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string{} : std::string(value);
}
}  // namespace

Security Security::temporary() {
  const detail::TemporaryCredentials credentials =
      detail::tls_backend().make_temporary(kTemporaryNotBefore, kTemporaryNotAfter);
  Security security;
  security.tls_ca_file = credentials.ca_pem;
  security.tls_cert = credentials.cert_pem;
  security.tls_key = credentials.key_pem;
  try {
    security.token = detail::auth::generate_token();
  } catch (const std::exception& e) {
    throw SecurityError(std::string("cannot make a temporary token: ") + e.what());
  }
  return security;
}

Security Security::from_environment() {
  Security security;
  security.token = env("DISTRIB_AUTH_TOKEN");
  security.tls_ca_file = env("DISTRIB_TLS_CA_FILE");
  security.tls_cert = env("DISTRIB_TLS_CERT");
  security.tls_key = env("DISTRIB_TLS_KEY");
  return security;
}

}  // namespace distrib
