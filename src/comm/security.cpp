// Security's constructors, the environment's defaults and protected mode.
#include <cstdlib>

#include "comm/auth.hpp"
#include "comm/security_defaults.hpp"
#include "comm/tls.hpp"
#include "distrib/config.hpp"
#include "distrib/errors.hpp"

namespace distrib {
Security Security::temporary() {
  // Valid from a minute ago (clocks of one host agree; a little slack costs nothing) for 30 days.
  auto pems = detail::tls_backend().make_temporary(-60, 30L * 24 * 3600);
  Security s;
  s.tls_ca_file = std::move(pems.ca_pem);
  s.tls_cert = std::move(pems.cert_pem);
  s.tls_key = std::move(pems.key_pem);
  s.token = detail::auth::generate_token();
  return s;
}

Security Security::from_environment() {
  Security s;
  // Through the configuration: DISTRIB_TLS_* and DISTRIB_AUTH_TOKEN, or the DISTRIB_CONFIG file.
  s.tls_ca_file = config::get("security.tls-ca-file");
  s.tls_cert = config::get("security.tls-cert");
  s.tls_key = config::get("security.tls-key");
  s.token = detail::auth::process_token().value_or("");
  if (s.token.empty()) {
    if (auto file = config::get("security.auth-token-file"); !file.empty()) s.token = detail::auth::read_token_file(file);
  }
  return s;
}

}  // namespace distrib

namespace distrib::detail {

Security with_environment_defaults(Security security) {
  auto env = Security::from_environment();
  if (!security.has_tls() && security.tls_ca_file.empty() && security.tls_cert.empty() && security.tls_key.empty()) {
    security.tls_ca_file = std::move(env.tls_ca_file);
    security.tls_cert = std::move(env.tls_cert);
    security.tls_key = std::move(env.tls_key);
  }
  if (security.token.empty()) security.token = std::move(env.token);
  const int tls_fields = !security.tls_ca_file.empty() + !security.tls_cert.empty() + !security.tls_key.empty();
  if (tls_fields != 0 && tls_fields != 3)
    throw SecurityError("TLS needs all three of the CA file, the certificate and its key (--tls-ca-file, --tls-cert, "
                        "--tls-key; DISTRIB_TLS_CA_FILE, DISTRIB_TLS_CERT, DISTRIB_TLS_KEY); only some are set");
  return security;
}

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

void require_protection(const std::string& host, const Security& security, bool insecure, const std::string& who) {
  if (insecure || security.enabled() || is_loopback_host(host)) return;
  throw SecurityError(
      who + " refuses to listen on " + host +
      " with neither TLS nor an auth token: anyone who can reach it could run code and read results (protected "
      "mode). Make a token (head -c 32 /dev/urandom | base64 > token; chmod 600 token) and pass --auth-token-file "
      "token to every daemon, or give --tls-ca-file, --tls-cert and --tls-key, or listen on this host only with "
      "--host 127.0.0.1, or pass --insecure to accept the risk on a network you trust");
}

}  // namespace distrib::detail
