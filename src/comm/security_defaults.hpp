#pragma once
// What a process does with the Security it is given (security.cpp).
#include <string>

#include "distrib/security.hpp"

namespace distrib::detail {

/// `security` with its unset parts taken from the environment (Security::from_environment):
/// every program (daemons, clients, LocalCluster) does this, so DISTRIB_AUTH_TOKEN alone
/// protects a cluster. Throws SecurityError if only some of the three TLS fields are set.
Security with_environment_defaults(Security security);

/// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(const std::string& host);

/// Protected mode: throws SecurityError, saying how to fix it, if `who` would listen on a
/// host other than loopback with neither TLS nor a token and without `insecure`.
void require_protection(const std::string& host, const Security& security, bool insecure, const std::string& who);

}  // namespace distrib::detail
