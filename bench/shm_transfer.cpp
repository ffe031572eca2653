// Same-host transfers of 1 GB (1e9 B) through shared memory against the socket, on a
// 2-worker, 1-thread-each LocalCluster (processes), as bench_transfer: worker to worker,
// gather and scatter, of an NDArray and a std::vector<double>. The program runs itself as a
// child once per mode and round, alternating shared memory on and off
// (DISTRIB_SHARED_MEMORY=0), and measures the plain-socket loopback limit (one thread
// writing 1 GB in 4 MiB writes, another reading into a reused 4 MiB buffer) between
// rounds. Prints one JSON line per figure: GB/s, median of every repetition of every
// round; then the ratio of each shared-memory figure to the loopback limit and to the same
// figure through the socket.
//
// What the figures time (from the call to its return, on the client):
//   w2w_*      submit .. result of a task on worker-0 taking a value made on worker-1
//              (`_read`: the task also sums every element, so every page is touched)
//   gather_*   Future::result() of a value held by a worker (`_read`: plus a sum here)
//   scatter_*  client.scatter(value, {.hash = false}) (`_fresh`: a new array every time,
//              whose first scatter also freezes it; the others reuse one array)
//   read_1GB_local   summing a warm 1 GB array here: the floor under the `_read` figures
// A std::vector is copied out of the received bytes when decoded (and into a buffer when
// encoded for a scatter), so its figures are bound by that copy, not by the transfer.
//   bench_shm_transfer [rounds=3] [repeats=2]
#include <distrib/distrib.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <numeric>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"
#include "cluster/process.hpp"
#include "core/shared_memory.hpp"

namespace {
constexpr std::int64_t kBytes = 1'000'000'000;

std::vector<double> make_values(std::int64_t nbytes, int seed) {
  std::vector<double> v(static_cast<std::size_t>(nbytes / 8));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>((i * 2654435761u + static_cast<unsigned>(seed)) % 1000);
  return v;
}
double sum(std::span<const double> v) { return std::accumulate(v.begin(), v.end(), 0.0); }
}  // namespace

distrib::NDArray make_array(std::int64_t nbytes, int seed) {
  distrib::NDArray a({nbytes / 8});
  auto v = a.values<double>();
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>((i * 2654435761u + static_cast<unsigned>(seed)) % 1000);
  return a;
}
DISTRIB_TASK(make_array);
std::vector<double> make_vector(std::int64_t nbytes, int seed) { return make_values(nbytes, seed); }
DISTRIB_TASK(make_vector);
std::int64_t array_bytes(distrib::NDArray a) { return static_cast<std::int64_t>(a.nbytes()); }
DISTRIB_TASK(array_bytes);
double array_sum(distrib::NDArray a) { return sum(a.values<double>()); }
DISTRIB_TASK(array_sum);
std::int64_t vector_bytes(std::vector<double> v) { return static_cast<std::int64_t>(v.size() * sizeof(double)); }
DISTRIB_TASK(vector_bytes);

using bench::Clock;
using bench::seconds_since;

namespace {

// ---- a child: one mode, `repeats` of every figure; prints "RUN name GB/s" lines --------

void run(const std::string& name, double seconds) {
  std::printf("RUN %s %.6g\n", name.c_str(), static_cast<double>(kBytes) / seconds / 1e9);
  std::fflush(stdout);
}

// Waits until the workers hold nothing (as bench_transfer) and, with shared memory, until
// the buffers this process handed to them are back in its pool: the scheduler forgets a key
// a moment before the worker unmaps it, and a repetition started in between would pay for
// a fresh buffer that the socket path, which gives its buffer back at once, does not.
void wait_released(distrib::Client& client) {
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    const auto info = client.scheduler_info();
    distrib::detail::trim_pooled_buffers();
    if (std::all_of(info.workers.begin(), info.workers.end(), [](const auto& w) { return w.stored == 0; }) &&
        distrib::detail::shm::lent_bytes() == 0)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  throw std::runtime_error("workers still hold data 30 s after every future was released");
}

template <class Make, class Consume>
void worker_to_worker(distrib::Client& client, const std::string& name, Make make, Consume consume, int seed) {
  auto src = client.submit({.pure = false, .workers = {"worker-1"}}, make, kBytes, seed);
  src.wait();
  auto t0 = Clock::now();
  auto r = client.submit({.pure = false, .workers = {"worker-0"}}, consume, src).result();
  run(name, seconds_since(t0));
  if (r <= 0) throw std::runtime_error(name + ": nothing arrived");
}

int child(int repeats) {
  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .dashboard_address = "none"});
  distrib::Client client(cluster);
  const auto values = make_values(kBytes, 1);
  const auto expected = sum(values);
  auto array = distrib::NDArray::from_values<double>(values);
  {
    auto t0 = Clock::now();
    if (sum(array.values<double>()) != expected) throw std::runtime_error("local sum");
    run("read_1GB_local", seconds_since(t0));
  }
  for (int r = 0; r < repeats; ++r) {
    worker_to_worker(client, "w2w_1GB_ndarray", make_array, array_bytes, 10 + r);
    wait_released(client);
    worker_to_worker(client, "w2w_1GB_ndarray_read", make_array, array_sum, 20 + r);
    wait_released(client);
    worker_to_worker(client, "w2w_1GB_vector", make_vector, vector_bytes, 30 + r);
    wait_released(client);
    {
      auto f = client.submit({.pure = false}, make_array, kBytes, 1);
      f.wait();
      auto t0 = Clock::now();
      auto a = f.result();
      run("gather_1GB_ndarray", seconds_since(t0));
      if (a.nbytes() != static_cast<std::size_t>(kBytes)) throw std::runtime_error("gather: other data");
    }
    wait_released(client);
    {
      auto f = client.submit({.pure = false}, make_array, kBytes, 1);
      f.wait();
      auto t0 = Clock::now();
      auto s = sum(f.result().values<double>());
      run("gather_1GB_ndarray_read", seconds_since(t0));
      if (s != expected) throw std::runtime_error("gather: other data");
    }
    wait_released(client);
    {
      auto f = client.submit({.pure = false}, make_vector, kBytes, 1);
      f.wait();
      auto t0 = Clock::now();
      auto v = f.result();
      run("gather_1GB_vector", seconds_since(t0));
      if (v.size() != values.size() || v[v.size() / 3] != values[values.size() / 3]) throw std::runtime_error("gather: other data");
    }
    wait_released(client);
    {
      auto t0 = Clock::now();
      auto f = client.scatter(array, {.hash = false});
      run("scatter_1GB_ndarray", seconds_since(t0));
      if (client.submit(array_sum, f).result() != expected) throw std::runtime_error("scatter: other data");
    }
    wait_released(client);
    {
      auto fresh = array.clone();  // not timed: a new buffer, never scattered
      auto t0 = Clock::now();
      auto f = client.scatter(fresh, {.hash = false});
      run("scatter_1GB_ndarray_fresh", seconds_since(t0));
      fresh.values<double>()[0] += 1;  // frozen: the worker keeps the bytes as scattered
      if (client.submit(array_sum, f).result() != expected) throw std::runtime_error("scatter: the worker saw a later write");
    }
    wait_released(client);
    {
      auto t0 = Clock::now();
      auto f = client.scatter(values, {.hash = false});
      run("scatter_1GB_vector", seconds_since(t0));
      if (client.submit(vector_bytes, f).result() != kBytes) throw std::runtime_error("scatter: other data");
    }
    wait_released(client);
  }
  auto info = client.scheduler_info();
  std::uint64_t shared = 0;
  for (const auto& w : info.workers) shared += w.shared_bytes_in + w.shared_bytes_out;
  std::printf("SHARED %llu\n", static_cast<unsigned long long>(shared));
  // CPU seconds of every process of the cluster, this one included.
  double cpu = bench::cpu_times(getpid()).self;
  for (int pid : bench::child_pids(getpid())) cpu += std::max(0.0, bench::cpu_times(pid).self);
  std::printf("CPU %.3f\n", cpu);
  client.shutdown();
  return 0;
}

// ---- the parent ---------------------------------------------------------------------------

// Seconds to move kBytes from one thread to another over loopback TCP (plain sockets).
double loopback_seconds() {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("loopback: cannot listen");
  int tx = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(tx, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("loopback: connect");
  int rx = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(listener);
  constexpr std::size_t kChunk = 4u << 20;
  std::vector<char> out(kChunk, 7), in(kChunk);
  std::thread reader([&] {
    std::int64_t got = 0;
    while (got < kBytes) {
      auto n = ::recv(rx, in.data(), in.size(), 0);
      if (n <= 0) break;
      got += n;
    }
  });
  auto t0 = Clock::now();
  for (std::int64_t left = kBytes; left > 0;) {
    auto n = ::send(tx, out.data(), static_cast<std::size_t>(std::min<std::int64_t>(left, kChunk)), MSG_NOSIGNAL);
    if (n <= 0) break;
    left -= n;
  }
  reader.join();
  double s = seconds_since(t0);
  ::close(tx);
  ::close(rx);
  return s;
}

// Runs one child and adds its figures to `runs` under `suffix`.
void run_child(const std::string& mode, int repeats, std::map<std::string, std::vector<double>>& runs) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  auto child = distrib::detail::ChildProcess::spawn(
      {distrib::detail::current_executable(), "--child", std::to_string(repeats)},
      {{"DISTRIB_SHARED_MEMORY", mode == "shm" ? "1" : "0"}}, {}, fds[1]);
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  child.wait(std::chrono::minutes(10));
  if (child.exit_code() != 0) throw std::runtime_error(mode + " child: " + child.exit_description() + "\n" + out);
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream f(line);
    std::string tag, name;
    double value = 0;
    f >> tag;
    if (tag == "RUN" && (f >> name >> value)) runs[name + "_" + mode].push_back(value);
    else if ((tag == "CPU" || tag == "SHARED") && (f >> value)) runs[(tag == "CPU" ? "cpu_seconds_" : "shared_bytes_") + mode].push_back(value);
  }
}

}  // namespace

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  if (argc > 2 && std::string(argv[1]) == "--child") return child(std::stoi(argv[2]));
  const int rounds = std::max(1, argc > 1 ? std::atoi(argv[1]) : 3);
  const int repeats = std::max(1, argc > 2 ? std::atoi(argv[2]) : 2);
  std::map<std::string, std::vector<double>> runs;
  std::printf("{\"bench\": \"load_before\", \"unit\": \"loadavg\", \"median\": %.2f}\n", bench::loadavg_1min());
  for (int r = 0; r < rounds; ++r) {
    for (const char* mode : {"shm", "tcp"}) {
      bench::section(std::string("child_") + mode, [&] { run_child(mode, repeats, runs); });
      runs["loopback_limit_1GB"].push_back(static_cast<double>(kBytes) / loopback_seconds() / 1e9);
    }
  }
  for (auto& [name, v] : runs) {
    const bool rate = name.rfind("cpu_", 0) != 0 && name.rfind("shared_", 0) != 0;
    bench::report(name, rate ? "GB/s" : (name[0] == 'c' ? "s" : "B"), v);
  }
  const double limit = bench::median(runs["loopback_limit_1GB"]);
  for (auto& [name, v] : runs) {
    if (name.size() < 4 || name.compare(name.size() - 4, 4, "_shm") != 0 || name.rfind("cpu_", 0) == 0 ||
        name.rfind("shared_", 0) == 0)
      continue;
    auto base = name.substr(0, name.size() - 4);
    auto tcp = runs.find(base + "_tcp");
    std::printf("{\"bench\": \"%s\", \"unit\": \"ratio\", \"vs_loopback_limit\": %.3g, \"vs_socket\": %.3g}\n", base.c_str(),
                bench::median(v) / limit, tcp != runs.end() ? bench::median(v) / bench::median(tcp->second) : 0.0);
  }
  std::printf("{\"bench\": \"load_after\", \"unit\": \"loadavg\", \"median\": %.2f}\n", bench::loadavg_1min());
  return 0;
}
