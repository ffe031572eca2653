#pragma once
// Where a daemon listens and what it tells others to use, for hosts with several networks or
// behind NAT (issue 18, part 8), as Dask's --interface and --contact-address.
#include <CLI/CLI.hpp>

#include <string>

#include "comm/endpoint.hpp"

namespace distrib::daemons {

struct AddressFlags {
  std::string interface;
  std::string contact_address;

  void add_to(CLI::App& app, CLI::Option* host) {
    app.add_option("--interface", interface,
                   "Network interface to listen on (eth0, ib0): its address replaces --host")
        ->excludes(host);
    app.add_option("--contact-address", contact_address,
                   "The address others are told to connect to, tcp://host:port, when it is not where this "
                   "process listens (NAT, a forwarded port); default: the listening address")
        ->check([](const std::string& text) {
          try {
            detail::parse_address(text);
            return std::string();
          } catch (const std::exception& e) {
            return std::string(e.what());
          }
        });
  }

  /// Replaces `host` by the interface's address when --interface was given; throws
  /// std::invalid_argument for an unknown interface.
  void apply(std::string& host) const {
    if (!interface.empty()) host = detail::interface_ip(interface);
  }
};

}  // namespace distrib::daemons
