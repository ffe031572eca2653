#pragma once
// The security flags dscheduler and dworker share, named as `dask scheduler`'s.
#include <CLI/CLI.hpp>

#include <string>

#include "comm/auth.hpp"
#include "distrib/security.hpp"

namespace distrib::daemons {

struct SecurityFlags {
  std::string tls_ca_file, tls_cert, tls_key, auth_token_file;
  bool insecure = false;

  void add_to(CLI::App& app) {
    app.add_option("--tls-ca-file", tls_ca_file, "CA certificate (PEM) that signs every certificate of the cluster: "
                                                 "with --tls-cert and --tls-key, every connection is mutual TLS 1.3 "
                                                 "(default: DISTRIB_TLS_CA_FILE)");
    app.add_option("--tls-cert", tls_cert, "This daemon's certificate (PEM), signed by the CA (default: DISTRIB_TLS_CERT)");
    app.add_option("--tls-key", tls_key, "The certificate's private key (PEM) (default: DISTRIB_TLS_KEY)");
    app.add_option("--auth-token-file", auth_token_file,
                   "File whose first line is the cluster's shared token: every peer must prove it holds it "
                   "(default: the DISTRIB_AUTH_TOKEN environment variable, if set)");
    app.add_flag("--insecure", insecure,
                 "Listen on a non-loopback interface with neither TLS nor a token (protected mode refuses that "
                 "otherwise): anyone who can reach the port can run code on the cluster");
  }

  /// The flags' Security (unset parts come from the environment later); reads the token
  /// file, throwing std::runtime_error if it cannot. The token also becomes the process's,
  /// for connections made without this Security.
  Security security() const {
    Security s;
    s.tls_ca_file = tls_ca_file;
    s.tls_cert = tls_cert;
    s.tls_key = tls_key;
    if (!auth_token_file.empty()) {
      s.token = detail::auth::read_token_file(auth_token_file);
      detail::auth::set_process_token(s.token);
    }
    return s;
  }
};

}  // namespace distrib::daemons
