#include "cluster/stdin_watch.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

namespace distrib::detail {

void StdinWatchFlag::start() const {
  if (!enabled) return;
  std::thread([] {
    char buffer[256];
    while (true) {
      const auto n = ::read(0, buffer, sizeof buffer);
      if (n > 0) continue;  // nothing is meant to come; whatever does is ignored
      if (n < 0 && errno == EINTR) continue;
      ::kill(::getpid(), SIGTERM);  // the daemon's own signal handling stops it cleanly
      return;
    }
  }).detach();
}

}  // namespace distrib::detail
