#include "launching_tasks.hpp"

#include <distrib/distrib.hpp>
#include <numeric>

#include "test_tasks.hpp"

long fib(int n, bool pure) {
  if (n < 2) return n;
  distrib::WorkerClient c;  // gives this task's thread back while it waits
  distrib::SubmitOptions o;
  o.pure = pure;
  auto a = c->submit(o, fib, n - 1, pure);
  auto b = c->submit(o, fib, n - 2, pure);
  return a.result() + b.result();
}
DISTRIB_TASK(fib);

std::string who_runs_me(int) {
  auto w = distrib::get_worker();
  return w.name + "|" + std::to_string(w.nthreads) + "|" + w.scheduler_address;
}
DISTRIB_TASK(who_runs_me);

long sum_of_triples(int n) {
  std::vector<int> xs(static_cast<std::size_t>(n));
  std::iota(xs.begin(), xs.end(), 0);
  distrib::WorkerClient c;
  auto parts = c->gather(c->map(triple, xs));
  return std::accumulate(parts.begin(), parts.end(), 0L);
}
DISTRIB_TASK(sum_of_triples);

int secede_twice(int) {
  distrib::secede();
  distrib::secede();
  distrib::rejoin();
  distrib::rejoin();
  return 1;
}
DISTRIB_TASK(secede_twice);
