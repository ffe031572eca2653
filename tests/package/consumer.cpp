#include <dlfcn.h>

#include <distrib/distrib.hpp>
#include <distrib/security.hpp>
#include <iostream>

int times_two(int x) { return 2 * x; }
DISTRIB_TASK(times_two);

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  distrib::LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1});
  distrib::Client client(cluster);
  int r = client.submit(times_two, 21).result();
  // Which library serves this program's malloc (mimalloc when distrib was built with it).
  Dl_info info{};
  const bool found = dladdr(dlsym(RTLD_DEFAULT, "malloc"), &info) != 0 && info.dli_fname;
  std::cout << "malloc from: " << (found ? info.dli_fname : "?") << "\n";
  std::cout << "consumer ok: " << r << "\n";
  // The TLS module is installed next to libdistrib.so, where the library loads it from.
  std::cout << "tls ok: " << distrib::Security::temporary().has_tls() << "\n";
  client.shutdown();
  return r == 42 ? 0 : 1;
}
