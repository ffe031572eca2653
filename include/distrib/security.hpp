#pragma once
// How a process proves who it is and protects its connections: Dask's
// distributed.Security, plus a shared token that Dask lacks.
//
//   distrib::ClientOptions options;
//   options.security = distrib::Security::from_environment();  // DISTRIB_AUTH_TOKEN, DISTRIB_TLS_*
//   options.security.tls_ca_file = "ca.pem";                     // mutual TLS 1.3
//   options.security.tls_cert = "client.pem";
//   options.security.tls_key = "client.key";
//   distrib::Client client("tls://scheduler:8786", options);
//
// See the user guide's Security section for what each mode protects.
#include <string>

namespace distrib {

struct Security {
  /// The CA that signs every certificate of the cluster, this process's certificate and its
  /// private key: each a PEM file's path or PEM text itself (text starting "-----BEGIN").
  /// All three set: connections to and from tls:// addresses use mutual TLS 1.3, and a peer
  /// must show a certificate signed by that CA. Host names are not checked (as Dask: the
  /// CA is the cluster's own).
  std::string tls_ca_file;
  std::string tls_cert;
  std::string tls_key;
  /// A shared secret: both ends of every connection prove they hold it (an HMAC
  /// challenge-response, over tcp:// and tls:// alike) before any message is read. Empty:
  /// no token.
  std::string token;

  /// True when the three TLS fields are set.
  bool has_tls() const { return !tls_ca_file.empty() && !tls_cert.empty() && !tls_key.empty(); }
  /// True when anything is set.
  bool enabled() const { return has_tls() || !token.empty(); }

  /// A throw-away CA and one certificate it signed, held in memory (as Dask's
  /// `security=True`), and a fresh random token: for a LocalCluster, whose workers get them
  /// from the cluster. Throws distrib::SecurityError if OpenSSL is unavailable.
  static Security temporary();
  /// DISTRIB_AUTH_TOKEN, DISTRIB_TLS_CA_FILE, DISTRIB_TLS_CERT and DISTRIB_TLS_KEY (unset ones
  /// are left empty): what every program uses when it is given no Security.
  static Security from_environment();
};

}  // namespace distrib
