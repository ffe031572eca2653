#pragma once
// TLS for the transport layer. The implementation (OpenSSL, tls_stream.cpp) lives in
// a separate module, libdistrib_tls.so, loaded the first time a process uses TLS: processes
// that never do map neither libssl nor libcrypto (as the dashboard's module).
#include <memory>
#include <string>

#include "comm/byte_stream.hpp"
#include "distrib/security.hpp"

namespace distrib::detail {

enum class TlsRole { client, server };

/// One process's TLS settings, loaded and checked once: every stream it wraps does a mutual
/// TLS 1.3 handshake (in ByteStream::async_handshake) and accepts only a peer whose
/// certificate the CA signed.
class TlsContext {
 public:
  virtual ~TlsContext() = default;
  /// Wraps a connected socket; the handshake runs when the Connection starts.
  virtual ByteStreamPtr wrap(StreamSocket socket, TlsRole role) = 0;
};

/// PEM text of a throw-away CA, a certificate it signed and the certificate's key.
struct TemporaryCredentials {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
};

/// The module's interface, one per process.
class TlsBackend {
 public:
  virtual ~TlsBackend() = default;
  /// Loads the CA, certificate and key (paths or PEM text, as Security's fields); throws
  /// SecurityError naming what is wrong (missing file, bad PEM, key not matching).
  virtual std::shared_ptr<TlsContext> make_context(const Security& security, TlsRole role) = 0;
  /// A fresh CA (EC P-256) and a certificate it signed, valid from `not_before_seconds` to
  /// `not_after_seconds` from now (tests make expired ones with negative values).
  virtual TemporaryCredentials make_temporary(long not_before_seconds, long not_after_seconds) = 0;
  /// The SHA-256 fingerprint of the first certificate in `security.tls_ca_file` (path or
  /// PEM text), as "AB:CD:..." (as `openssl x509 -fingerprint -sha256` prints it); throws
  /// SecurityError as make_context does.
  virtual std::string ca_fingerprint(const Security& security) = 0;
};

/// Loads libdistrib_tls.so (once, next to libdistrib.so, then the loader's search path).
/// Throws SecurityError if it cannot be loaded.
TlsBackend& tls_backend();

using TlsBackendFn = TlsBackend* (*)();
inline constexpr const char* kTlsModule = "libdistrib_tls.so";
inline constexpr const char* kTlsEntryPoint = "distrib_tls_backend";

}  // namespace distrib::detail
