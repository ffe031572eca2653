#pragma once
// libdistrib's own way into a Client (for the worker's shared client of its tasks).
#include "client/client_impl.hpp"
#include "distrib/client.hpp"

namespace distrib::detail {

struct ClientAccess {
  static ClientImpl& impl(Client& client) { return *client.impl_; }
};

}  // namespace distrib::detail
