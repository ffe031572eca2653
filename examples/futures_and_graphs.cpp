// Futures, data and graphs on a LocalCluster: scatter, dependencies across workers,
// a reduction over a vector of futures, cancel, wait / as_completed, a task graph and a
// progress bar.
//   ./futures_and_graphs
#include <distrib/distrib.hpp>

#include <chrono>
#include <iostream>
#include <numeric>
#include <thread>
#include <vector>

double scale(std::vector<double> v, double factor) {
  double s = 0;
  for (double x : v) s += x * factor;
  return s;
}
DISTRIB_TASK(scale);

double total(std::vector<double> parts) { return std::accumulate(parts.begin(), parts.end(), 0.0); }
DISTRIB_TASK(total);

int slow_square(int x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // stands for real work
  return x * x;
}
DISTRIB_TASK(slow_square);

int add(int a, int b) { return a + b; }
DISTRIB_TASK(add);

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1});
  distrib::Client client(cluster);

  // Data goes straight to a worker; tasks that use it run where it is.
  auto data = client.scatter(std::vector<double>(1'000'000, 0.5));
  std::vector<distrib::Future<double>> parts;
  for (int i = 1; i <= 8; ++i) parts.push_back(client.submit(scale, data, double(i)));
  auto sum = client.submit(total, parts);  // a vector of futures is a std::vector<double>
  std::cout << "sum = " << sum.result() << "\n";

  // Cancel work that is no longer needed.
  auto slow = client.map(distrib::SubmitOptions{.pure = false}, slow_square, std::vector<int>(20, 3));
  client.cancel(std::vector(slow.begin() + 10, slow.end()));
  auto [done, not_done] = distrib::wait(std::vector(slow.begin(), slow.begin() + 10));
  std::cout << done.size() << " finished, " << not_done.size() << " pending\n";

  // Results in the order they complete.
  int squares = 0;
  for (auto& f : distrib::as_completed(client.map(slow_square, std::vector<int>{1, 2, 3, 4}))) squares += f.result();
  std::cout << "sum of squares = " << squares << "\n";

  // A task graph, sent in one message; intermediate results are freed as soon as used.
  distrib::Graph g;
  auto a = g.add("a", slow_square, 3);
  auto b = g.add("b", slow_square, 4);
  auto c = g.add("c", add, a, b);
  std::cout << "a^2 + b^2 = " << client.get(g, c) << "\n";

  auto many = client.map(slow_square, std::vector<int>{5, 6, 7, 8, 9, 10, 11, 12});
  distrib::progress(many);

  auto info = client.scheduler_info();
  std::cout << info.workers.size() << " workers\n";
  client.shutdown();
  return sum.done() ? 0 : 1;
}
