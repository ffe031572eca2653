// Every C++ fragment of docs/user-guide.md, as one complete program. The guide quotes the
// sections between the "[name]" markers; keep the two in step.
//
//   user_guide                     runs the examples on a LocalCluster (child processes)
//   user_guide tcp://host:8786     runs them against a scheduler that is already running
//
// Links distrib::distrib and spdlog::spdlog (the [logging] section uses spdlog directly).
#include <distrib/distrib.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

// [tasks]
int inc(int x) { return x + 1; }
DISTRIB_TASK(inc);

double scale(double x, double factor) { return x * factor; }
DISTRIB_TASK(scale);

// Parameters may be taken by value or by const reference.
double total(const std::vector<double>& xs) { return std::accumulate(xs.begin(), xs.end(), 0.0); }
DISTRIB_TASK(total);

std::map<std::string, int> word_lengths(const std::vector<std::string>& words) {
  std::map<std::string, int> out;
  for (const auto& w : words) out[w] = static_cast<int>(w.size());
  return out;
}
DISTRIB_TASK(word_lengths);

int half_of_even(int x) {
  if (x % 2 != 0) throw std::domain_error(std::to_string(x) + " is odd");
  return x / 2;
}
DISTRIB_TASK(half_of_even);

int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
DISTRIB_TASK(sleep_ms);

// A function returning void gives a Future<distrib::Nothing>.
void check_positive(int x) {
  if (x <= 0) throw std::invalid_argument("not positive");
}
DISTRIB_TASK(check_positive);

// Raises on its first call in each worker process, then succeeds (see retries).
int flaky(int x) {
  static std::atomic<int> calls{0};
  if (calls++ == 0) throw std::runtime_error("transient failure");
  return x;
}
DISTRIB_TASK(flaky);

// No parameters: for Client::run.
int worker_pid() { return static_cast<int>(getpid()); }
DISTRIB_TASK(worker_pid);
// [/tasks]

// [user-type]
namespace geo {
struct Point {
  double x = 0, y = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(x, y);  // every member, in a fixed order
  }
  static std::string distrib_type_name() { return "geo::Point"; }  // optional
};

Point midpoint(Point a, Point b) { return {(a.x + b.x) / 2, (a.y + b.y) / 2}; }
}  // namespace geo
DISTRIB_TASK(geo::midpoint);  // registered under the name "geo::midpoint"
// [/user-type]

// [stoppable]
// A last std::stop_token parameter is passed by the worker, not by the caller:
// client.submit(count_until_stopped, 60'000). It stops being "requested" once nobody wants
// the result (the future was cancelled or dropped, its client left, the worker is closing).
int count_until_stopped(int limit, std::stop_token stop) {
  int i = 0;
  for (; i < limit && !stop.stop_requested(); ++i) std::this_thread::sleep_for(1ms);
  return i;
}
DISTRIB_TASK(count_until_stopped);

// Code that has no token at hand asks distrib::cancelled() (false outside a task).
double sum_of_squares(int n) {
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    if (i % 4096 == 0 && distrib::cancelled()) throw std::runtime_error("stopped: nobody wants the result");
    sum += static_cast<double>(i) * i;
  }
  return sum;
}
DISTRIB_TASK(sum_of_squares);
// [/stoppable]

// [launching-tasks]
// A task that submits tasks and waits for them: the WorkerClient guard gives its thread
// back meanwhile (secede), so that the tasks it waits on can run, even on one thread.
long fib(int n) {
  if (n < 2) return n;
  distrib::WorkerClient c;  // the worker's shared client (distrib::get_client())
  auto a = c->submit(fib, n - 1);
  auto b = c->submit(fib, n - 2);
  return a.result() + b.result();
}
DISTRIB_TASK(fib);

// A task asks where it runs.
std::string where_am_i(int) {
  distrib::TaskWorker w = distrib::get_worker();
  return w.name + " (" + std::to_string(w.nthreads) + " threads)";
}
DISTRIB_TASK(where_am_i);

void launching_examples(distrib::Client& client) {
  std::cout << "fib(16) = " << client.submit(fib, 16).result() << "\n";  // 987, on two 1-thread workers
  std::cout << client.submit(where_am_i, 0).result() << "\n";
}
// [/launching-tasks]

void submit_examples(distrib::Client& client) {
  // [submit]
  distrib::Future<int> a = client.submit(inc, 10);
  distrib::Future<double> b = client.submit(scale, 3, 1.5f);  // int and float convert to double
  auto c = client.submit(total, std::vector<double>{1, 2, 3});
  auto d = client.submit(word_lengths, std::vector<std::string>{"map", "gather"});
  auto e = client.submit(geo::midpoint, geo::Point{0, 0}, geo::Point{2, 4});
  auto f = client.submit(inc, a);  // a Future<int> stands for an int: f runs after a

  // client.submit(inc, "ten");    // does not compile: const char* does not convert to int
  // client.submit(inc, 1, 2);     // does not compile: inc takes one argument
  // client.submit(scale, a, 2);   // does not compile: a Future<int> is not a double
  // [/submit]
  std::cout << a.result() << " " << b.result() << " " << c.result() << " " << d.result().at("gather") << " "
            << e.result().y << " " << f.result() << "\n";
}

void future_examples(distrib::Client& client) {
  // [future]
  distrib::Future<int> f = client.submit(sleep_ms, 200);
  std::cout << f.key() << "\n";           // "sleep_ms-<token>"
  bool finished = f.wait_for(10ms);       // false: still running
  f.wait();                               // blocks until finished, failed or lost
  if (f.done() && f.status() == distrib::FutureStatus::finished) {
    int ms = f.result();                  // fetched from the worker that holds it
    int again = f.result(5s);             // TimeoutError if not there within 5 s
    std::cout << finished << " " << ms << " " << again << "\n";
  }
  distrib::Future<int> copy = f;          // copies share one state; the key is released
                                          // on the cluster when the last copy goes away
  distrib::Future<distrib::Nothing> checked = client.submit(check_positive, 1);
  checked.result();                       // returns distrib::Nothing{}
  // [/future]
  (void)copy;
}

void map_gather_examples(distrib::Client& client) {
  // [map]
  std::vector<distrib::Future<int>> fs = client.map(inc, std::vector<int>{1, 2, 3});
  std::vector<int> r = client.gather(fs);                       // {2, 3, 4}
  auto gs = client.map(inc, std::views::iota(0, 100));          // any input range
  auto hs = client.map(inc, fs);                                // a range of futures: dependencies
  int one = client.gather(fs.front());                          // same as fs.front().result()
  // [/map]
  std::cout << r[2] << " " << client.gather(gs).back() << " " << client.gather(hs).back() << " " << one << "\n";
}

void error_examples(distrib::Client& client) {
  // [errors]
  auto bad = client.submit(half_of_even, 3);
  auto after = client.submit(inc, bad);  // depends on a task that will fail
  try {
    bad.result();
  } catch (const distrib::TaskError& e) {
    // e.key() == bad.key(), e.remote_type() == "std::domain_error",
    // e.remote_message() == "3 is odd"
    std::cout << e.what() << "\n";
  }
  try {
    after.result();
  } catch (const distrib::TaskError& e) {
    // the dependency's exception type and message, under after's key
    std::cout << e.key() << ": " << e.remote_message() << "\n";
  }
  try {
    client.submit(sleep_ms, 1000).result(10ms);
  } catch (const distrib::TimeoutError& e) {
    std::cout << "not yet: " << e.what() << "\n";
  }
  // [/errors]
}

void submit_option_examples(distrib::Client& client) {
  // [submit-options]
  auto x1 = client.submit(inc, 41);
  auto x2 = client.submit(inc, 41);  // pure (the default): same key as x1, computed once
  auto r1 = client.submit({.pure = false}, sleep_ms, 1);  // a fresh key on every call
  auto r2 = client.submit({.pure = false}, sleep_ms, 1);  // r1.key() != r2.key()
  auto named = client.submit({.key = "answer"}, inc, 41);  // your own key
  auto first = client.submit({.priority = 10}, inc, 1);    // higher priority runs first
  auto retried = client.submit({.retries = 2}, flaky, 7);  // rerun up to twice if it raises
  auto pinned = client.submit({.workers = {"worker-0"}}, inc, 2);  // only on worker-0 (name or address)
  auto loose = client.submit({.workers = {"no-such-worker"}, .allow_other_workers = true}, inc, 3);
  auto batch = client.map({.priority = -1}, inc, std::vector<int>{4, 5});  // options apply to each task
  distrib::SubmitOptions gpu{.resources = {{"GPU", 1}}};  // only on workers started with
                                                          // dworker --resources "GPU=1" or more
  // [/submit-options]
  std::cout << (x1.key() == x2.key()) << (r1.key() != r2.key()) << " " << named.key() << " " << named.result() << " "
            << first.result() << " " << retried.result() << " " << pinned.result() << " " << loose.result() << " "
            << client.gather(batch).size() << " " << gpu.resources.size() << "\n";
}

void scatter_examples(distrib::Client& client) {
  // [scatter]
  std::vector<double> big(1'000'000, 0.5);
  distrib::Future<std::vector<double>> data = client.scatter(big);  // the client sends it to a worker
  auto sum = client.submit(total, data);       // a scattered future is an argument like any other
  auto same = client.scatter(big);             // same content, same key: nothing is sent again
  auto each = client.scatter_each(std::vector<int>{1, 2, 3});  // three futures, spread over the workers
  auto config = client.scatter(std::string("settings"), {.broadcast = true});   // on every worker
  auto here = client.scatter(42, {.workers = {"worker-1"}, .hash = false});     // one worker, random key
  // [/scatter]
  std::cout << sum.result() << " " << (same.key() == data.key()) << " " << client.gather(each).size() << " "
            << config.result() << " " << here.result() << "\n";
}

void future_vector_examples(distrib::Client& client) {
  // [future-vector]
  std::vector<distrib::Future<double>> parts;
  for (int i = 1; i <= 4; ++i) parts.push_back(client.submit(scale, i, 0.5));
  // total takes a std::vector<double>: a std::vector<Future<double>> stands for it.
  distrib::Future<double> sum = client.submit(total, parts);  // 5
  // [/future-vector]
  std::cout << sum.result() << "\n";
}

void cancel_examples(distrib::Client& client) {
  // [cancel]
  auto slow = client.submit(sleep_ms, 1500);
  auto after = client.submit(inc, slow);  // depends on slow
  slow.cancel();                          // or client.cancel(slow), or client.cancel(a_vector)
  try {
    after.result();
  } catch (const distrib::CancelledError& e) {  // dependents are cancelled too
    std::cout << e.what() << "\n";              // task 'inc-…' was cancelled
  }
  // slow.status() == distrib::FutureStatus::cancelled; submitting it again gives a new future

  auto endless = client.submit(count_until_stopped, 60'000);  // would count for a minute
  endless.cancel();  // the worker asks it to stop: its thread is free again at once
  std::cout << client.submit(sum_of_squares, 1000).result() << "\n";
  // [/cancel]
}

void waiting_examples(distrib::Client& client) {
  // [wait]
  auto fs = client.map({.pure = false}, sleep_ms, std::vector<int>{300, 10, 20});
  auto [done, not_done] = distrib::wait(fs, 5s, distrib::FIRST_COMPLETED);  // at least one done
  for (auto& f : distrib::as_completed(fs)) std::cout << f.result() << " ";  // in the order they finish
  distrib::wait(fs);  // ALL_COMPLETED, no timeout: returns at once here

  distrib::AsCompleted<int> queue(fs);
  queue.add(client.submit(inc, 1));  // futures may be added while iterating
  int n = 0;
  for (auto& f : queue) n += f.done();

  std::atomic<int> called{0};
  fs[0].add_done_callback([&called](const distrib::Future<int>&) { ++called; });  // at once: done

  auto bad = client.submit(half_of_even, 5);
  std::exception_ptr e = bad.exception();  // waits; null if the task succeeded
  auto good = client.submit(half_of_even, 4);
  std::vector<int> ok = client.gather(std::vector{good, bad}, distrib::Errors::skip);  // {2}
  // [/wait]
  std::cout << "\n" << done.size() + not_done.size() << " " << n << " " << called << " " << (e != nullptr) << " "
            << ok.size() << "\n";
}

void graph_examples(distrib::Client& client) {
  // [graph]
  distrib::Graph g;
  distrib::Delayed<int> a = g.add("a", inc, 1);
  auto b = g.add("b", inc, a);  // a Delayed<int> argument: the result of task "a"
  auto c = g.add("c", scale, 1.5, 2.0);
  auto d = g.add("d", total, std::vector<double>{1, 2});
  auto slow = g.add("slow", sleep_ms, 100);  // not needed by b: not sent for it

  distrib::Future<int> fb = client.compute(g, b);                       // runs a, then b
  std::vector<distrib::Future<double>> fcd = client.compute(g, std::vector{c, d});
  distrib::Client::Persisted all = client.persist(g);                   // every task, every result kept
  distrib::Future<int> fa = all[a];
  int b_value = client.get(g, b);  // one shot: compute, fetch, release
  // [/graph]
  std::cout << fb.result() << " " << fcd[0].result() + fcd[1].result() << " " << all.size() << " " << fa.result()
            << " " << all[slow].result() << " " << b_value << "\n";
}

void introspection_examples(distrib::Client& client) {
  // [run]
  std::map<std::string, int> pids = client.run(worker_pid);  // worker address -> its result
  // [/run]
  for (const auto& [address, pid] : pids) std::cout << address << " pid " << pid << "\n";

  auto fs = client.map(inc, std::vector<int>{10, 20});
  client.gather(fs);
  // [info]
  distrib::SchedulerInfo info = client.scheduler_info();
  for (const auto& w : info.workers)
    std::cout << w.name << " " << w.address << ": " << w.nthreads << " threads, " << w.processing << " processing, "
              << w.stored << " keys (" << w.stored_bytes << " bytes)\n";
  for (const auto& [state, count] : info.tasks) std::cout << state << ": " << count << "\n";
  std::map<std::string, std::vector<std::string>> where = client.who_has(fs);  // key -> worker addresses
  std::map<std::string, std::vector<std::string>> held = client.has_what();    // worker address -> keys
  std::map<std::string, unsigned> threads = client.nthreads();                 // worker address -> threads
  // [/info]
  std::cout << where.size() << " " << held.size() << " " << threads.size() << "\n";
  // [dashboard]
  std::cout << "dashboard: " << client.dashboard_link() << "\n";  // http://127.0.0.1:8787/status
  // [/dashboard]
  // [story]
  for (const distrib::Transition& t : client.story(fs[0]))
    std::cout << t.stimulus << ": " << t.from << " -> " << t.to << " on " << t.worker << "\n";
  // [/story]
}

// [killed-worker]
// What a task that crashes its worker looks like on the client (not run here: it would
// take down this guide's workers).
void report_crash(distrib::Client& client, int (*crashes_its_worker)(int)) {
  try {
    client.submit(crashes_its_worker, 1).result();
  } catch (const distrib::KilledWorker& e) {
    std::cout << e.key() << " killed its workers; the last was " << e.last_worker() << "\n";
  }
}
// [/killed-worker]

void progress_examples(distrib::Client& client) {
  // [progress]
  auto many = client.map({.pure = false}, sleep_ms, std::vector<int>(20, 10));
  distrib::progress(many);  // blocks until all are done: live bars on a terminal (stderr)
  distrib::progress(many, {.out = &std::cout, .mode = distrib::ProgressOptions::Mode::lines});
  // [/progress]
}

// [ndarray]
double array_sum(distrib::NDArray a) {
  double s = 0;
  for (double x : a.values<double>()) s += x;  // contiguous elements, C order
  return s;
}
DISTRIB_TASK(array_sum);

void ndarray_examples(distrib::Client& client) {
  auto a = distrib::NDArray::zeros({3, 4});  // float64; also float32, int64, bool
  a.at<double>({1, 2}) = 5;
  auto b = distrib::NDArray::from_values<double>(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  double total = client.submit(array_sum, b).result();  // travels without copies into messages
  auto shared = a;                                      // copies share the data...
  auto independent = a.clone();                         // ...clone() does not
  // [/ndarray]
  std::cout << total << " " << shared.equals(a) << " " << independent.size() << "\n";
}

void array_examples(distrib::Client& client) {
  // [arrays]
  namespace da = distrib::array;
  auto x = da::random::random({2000, 2000}, {500, 500}, /*seed=*/42);  // 4 x 4 blocks
  auto y = x + x.T();                                  // lazy: nothing runs yet
  auto z = y.mean(0);                                  // shape (2000,), one block per column band
  distrib::NDArray local = z.compute();                // threads of this process
  distrib::NDArray remote = client.compute(z).result();  // the same values, on the cluster

  auto a = da::arange(12, {4}).reshape({3, 4}).astype(distrib::DType::float64);
  auto b = (a - a.mean(1, {.keepdims = true})) / a.std(1, 0, {.keepdims = true});
  auto rows = a.slice({da::Slice{0, 3, 2}});           // rows 0 and 2
  double biggest = da::dot(a, a.T()).max().item();     // item(): a one-element array's value

  auto xs = client.persist(x);                         // blocks stay on the workers
  distrib::Future<double> m = client.submit(da::mean, xs);  // a tree reduction over xs's blocks
  double mean = m.result();
  // [/arrays]
  std::cout << local.equals(remote) << " " << b.compute().shape_string() << " " << rows.shape()[0] << " " << biggest
            << " " << mean << "\n";
}

void restart_examples(distrib::Client& client) {
  // [restart]
  auto stale = client.submit(inc, 41);
  stale.wait();
  client.restart();  // fresh worker processes; every future of every client is cancelled
  try {
    stale.result();
  } catch (const distrib::CancelledError& e) {
    std::cout << e.what() << "\n";  // task 'inc-…' was cancelled
  }
  int answer = client.submit(inc, 41).result();  // new work runs on the new workers
  // [/restart]
  std::cout << answer << " on " << client.n_workers() << " workers\n";
}

// [coordination-task]
// In a task, the primitives need no client: they use the worker's shared one
// (distrib::get_client()).
int report_square(int x) {
  distrib::Queue<int>("squares").put(x * x);
  distrib::Lock lock("tally-lock");
  std::lock_guard guard(lock);  // one task at a time in here, whatever worker it runs on
  distrib::Variable<int> tally("tally");
  tally.set(tally.get() + 1);
  return x;
}
DISTRIB_TASK(report_square);
// [/coordination-task]

void coordination_examples(distrib::Client& client) {
  // [coordination]
  distrib::Variable<int> tally("tally", client);
  tally.set(0);
  std::vector<distrib::Future<int>> reports;
  for (int x = 1; x <= 4; ++x) reports.push_back(client.submit(report_square, x));
  distrib::Queue<int> squares("squares", client);
  int sum = 0;
  for (int i = 0; i < 4; ++i) sum += squares.get(30s);  // in the order the tasks put them
  client.gather(reports);
  std::cout << sum << " from " << tally.get() << " tasks\n";  // 30 from 4 tasks

  distrib::Event ready("ready", client);
  ready.set();                      // every waiter, on any client, is released
  bool go = ready.wait(1s);         // true at once: it is set
  distrib::Semaphore database("database", client, 2);  // two leases at a time
  {
    std::lock_guard lease(database);  // one of them, given back at the end of the scope
  }
  try {
    distrib::Variable<std::string>("tally", client).get();
  } catch (const distrib::DecodeError& e) {
    std::cout << e.what() << "\n";  // variable 'tally' holds a value of type 'i32', not 'string'
  }

  // Datasets: a future under a name, kept by the scheduler until unpublished.
  auto forty_two = client.submit(inc, 41);  // hold the future while publishing (see the guide)
  client.publish_dataset("answer", forty_two);
  auto answer = client.get_dataset<int>("answer");  // from any client of this scheduler
  std::cout << answer.result() << " in " << client.list_datasets().size() << " dataset\n";
  client.unpublish_dataset("answer");

  // Topics: events logged by clients and tasks, handed to subscribers on a thread of their own.
  client.subscribe_topic<std::string>("stages", [](const distrib::TopicEvent<std::string>& e) {
    std::cout << e.topic << ": " << e.message << "\n";
  });
  client.log_event("stages", "loaded");
  auto events = client.get_events<std::string>("stages");  // the last 1000, oldest first
  client.unsubscribe_topic("stages");
  // [/coordination]
  std::cout << go << " " << events.size() << "\n";
}

void option_examples() {
  // [cluster-options]
  distrib::LocalClusterOptions in_threads{
      .n_workers = 2,
      .threads_per_worker = 2,
      .processes = false,  // scheduler and workers as threads of this process
  };
  distrib::LocalClusterOptions verbose{.log_level = "info", .start_timeout = 5s};
  // [/cluster-options]
  distrib::LocalCluster cluster(in_threads);
  distrib::Client client(cluster);
  std::cout << cluster.n_workers() << "x" << cluster.threads_per_worker() << " " << client.submit(inc, 1).result()
            << " " << verbose.log_level << "\n";
  client.shutdown();
}

void memory_examples() {
  // [memory]
  // Two workers of 64 MiB each; a 192 MiB array (three times their memory) is persisted:
  // past 0.6 x 64 MiB per worker, blocks go to /tmp/distrib-worker-XXXXXX/ and come back
  // by mmap when a reduction reads them.
  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .memory_limit = "64MiB",
                                 .local_directory = "/tmp"});
  distrib::Client client(cluster);
  auto x = distrib::array::random::random({6144, 4096}, {256, 4096}, 7);  // 24 blocks of 8 MiB
  auto p = client.persist(x);
  double total = client.compute(p.sum()).result().values<double>()[0];
  for (const auto& w : client.scheduler_info().workers)
    std::cout << w.name << ": " << w.managed << " B in memory, " << w.spilled << " B spilled, "
              << w.unmanaged() << " B unmanaged" << (w.paused ? " (paused)" : "") << "\n";
  // [/memory]
  std::cout << "sum " << total << "\n";
  client.shutdown();
}

void security_examples() {
  // [security]
  distrib::LocalClusterOptions o{.n_workers = 1, .threads_per_worker = 1, .dashboard_address = "none"};
  o.security = distrib::Security::temporary();  // tls:// between the client, scheduler and workers
  distrib::LocalCluster cluster(o);
  distrib::Client client(cluster);  // takes the cluster's credentials
  std::cout << "over " << client.scheduler_address() << ": " << client.submit(half_of_even, 8).result() << "\n";

  distrib::ClientOptions without;  // no certificate: the cluster refuses it
  without.connect_timeout = 2s;
  without.reconnect_timeout = 0s;
  try {
    distrib::Client stranger(cluster.scheduler_address(), without);
  } catch (const distrib::SecurityError& e) {
    std::cout << "refused: " << e.what() << "\n";
  }
  // [/security]
  client.shutdown();
}

void scaling_examples() {
  // [scaling]
  distrib::LocalCluster cluster({.n_workers = 1, .threads_per_worker = 1, .dashboard_address = "none"});
  distrib::Client client(cluster);
  cluster.scale(3);  // two more workers, registered when it returns
  auto results = client.map(inc, std::vector<int>{1, 2, 3, 4, 5, 6});
  distrib::wait(results);
  cluster.scale(1);  // the newest two retire: what only they hold moves first
  std::cout << cluster.n_workers() << " worker, results kept: " << client.gather(results)[5] << "\n";
  // Or let the cluster follow the work: 1 to 4 workers.
  cluster.adapt(1, 4, {.interval = 500ms, .wait_count = 3});
  // ...
  cluster.stop_adapting();
  // Retiring workers by name or address, on any cluster:
  //   client.retire_workers({"worker-0"});
  // [/scaling]
  client.shutdown();
}

void configuration_examples() {
  // [configuration]
  // DISTRIB_CONFIG=/etc/distrib.yaml, DISTRIB_CLIENT__CONNECT_TIMEOUT=30s, ... set these.
  std::cout << "client.connect-timeout = " << distrib::config::get("client.connect-timeout") << "\n";
  for (const auto& s : distrib::config::settings("local-cluster."))
    if (s.source != "default") std::cout << s.key << " = " << s.value << " (" << s.source << ")\n";
  distrib::ClientOptions o;  // its defaults were read from there; what you set wins
  o.name = "nightly-report";
  // [/configuration]
  (void)o;
}

// [off-one-machine]
// Under `mpirun -n 4 drun ./app` or `srun -n 4 drun ./app`, rank 1 runs this: the client
// finds its scheduler through DISTRIB_SCHEDULER_FILE, which drun sets; the ranks from 2 on
// run this same program as workers (./app --distrib-worker ...), so inc needs no
// separate library.
int run_under_a_launcher() {
  distrib::Client client;  // DISTRIB_SCHEDULER_ADDRESS, or the file DISTRIB_SCHEDULER_FILE
  client.wait_for_workers(2, 60s);
  std::cout << client.submit(inc, 12).result() << "\n";
  return 0;
}

// A scheduler and workers started over ssh; they stop with `cluster`.
void over_ssh() {
  distrib::SSHClusterOptions o;
  o.worker_command = {"/shared/bin/app", "--distrib-worker"};  // this program, on each host
  o.nthreads = 8;
  distrib::SSHCluster cluster({"head", "node1", "node2"}, o);
  distrib::Client client(cluster);  // with the token the cluster drew
  std::cout << client.submit(inc, 3).result() << "\n";
}

// [slurm-job]
// The sbatch script of a batch job: 10 tasks, so the scheduler, this program and 8 workers.
std::string slurm_script() {
  distrib::SlurmJobOptions o;
  o.job_name = "cubes";
  o.queue = "compute";      // #SBATCH --partition
  o.account = "proj42";     // #SBATCH --account
  o.walltime = "02:30:00";  // HH:MM:SS or D-HH:MM:SS
  o.nodes = 2;
  o.ntasks = 10;
  o.cpus_per_task = 4;      // each worker's threads
  o.memory = "16G";         // #SBATCH --mem, per node
  o.job_script_prologue = {"module load gcc/12"};
  o.drun_args = {"--interface", "ib0"};
  o.program = {"./app", "input.csv"};
  distrib::SlurmJob job(o);
  return job.job_script();  // or: std::string id = job.submit();  (sbatch --parsable)
}
// [/slurm-job]

// A scheduler started with `dscheduler --scheduler-file /shared/scheduler.json`:
void from_a_scheduler_file() {
  distrib::Client client(distrib::SchedulerFile{"/shared/scheduler.json"});
  std::cout << client.n_workers() << " workers\n";
}

// Workers without the tasks (a plain dworker) load them from the client.
void ship_tasks(distrib::Client& client) {
  try {
    client.upload_file("build/libmytasks.so");  // every worker loaded it
  } catch (const distrib::Error& e) {
    std::cerr << e.what() << "\n";  // names each worker that could not load it
  }
}
// [/off-one-machine]

// [client-ops-tasks]
int add(int x, int y) { return x + y; }
DISTRIB_TASK(add);

// Fails the first time (it leaves `marker` behind), succeeds once `marker` exists.
int fails_first_time(std::string marker) {
  if (!std::filesystem::exists(marker)) {
    std::ofstream(marker) << "tried\n";
    throw std::runtime_error("not yet");
  }
  return 1;
}
DISTRIB_TASK(fails_first_time);

int process_pid(int) { return static_cast<int>(::getpid()); }
DISTRIB_TASK(process_pid);
// [/client-ops-tasks]

void client_ops_examples(distrib::Client& client) {
  // [map-zip]
  std::vector<int> xs{1, 2, 3};
  auto sums = client.map(add, xs, std::vector<int>{10, 20, 30});  // add(1, 10), add(2, 20), add(3, 30)
  auto plus = client.map(add, xs, distrib::constant(100));        // add(x, 100): Dask's map(add, xs, y=100)
  auto short_ = client.map(add, xs, std::vector<int>{1});         // stops at the shortest: one task
  // [/map-zip]
  std::cout << "zipped: " << client.gather(sums).back() << " " << client.gather(plus).front() << " " << short_.size()
            << "\n";

  // [as-completed-more]
  auto fs = client.map({.pure = false}, sleep_ms, std::vector<int>{30, 10, 20});
  for (auto& batch : distrib::as_completed(fs).batches()) std::cout << batch.size() << " done at once\n";
  for (auto& [f, ms] : distrib::as_completed(fs).with_results()) std::cout << f.key() << " slept " << ms << "\n";
  auto slow = client.submit({.pure = false}, sleep_ms, 2000);
  auto within = distrib::as_completed(std::vector{slow}, 100ms);
  try {
    within.next();
  } catch (const distrib::TimeoutError&) {
    std::cout << "not within 100 ms\n";
  }
  // [/as-completed-more]

  // [continuations]
  distrib::Continuation<std::string> text =
      client.submit(inc, 41).then([](int v) { return "got " + std::to_string(v); });  // on the continuation thread
  auto failed = client.submit(half_of_even, 3).then([](int v) { return v * 2; });      // skipped: the task erred
  auto both = distrib::when_all(client.submit(inc, 1), client.submit(inc, 2)).then([](auto futures) {
    return std::get<0>(futures).result() + std::get<1>(futures).result();
  });
  auto first = distrib::when_any(std::vector{slow, client.submit(inc, 0)});
  std::cout << text.get() << ", " << both.get() << ", first done: " << first.get().index << "\n";
  try {
    failed.get();
  } catch (const distrib::TaskError& e) {
    std::cout << "continuation failed with the task: " << e.remote_message() << "\n";
  }
  // [/continuations]

  // [fire-and-forget]
  client.fire_and_forget(client.submit({.pure = false}, sleep_ms, 50));  // runs even if this client goes now
  // [/fire-and-forget]

  // [retry]
  auto marker = std::filesystem::temp_directory_path() / ("distrib-guide-" + std::to_string(::getpid()));
  auto attempt = client.submit(fails_first_time, marker.string());
  if (attempt.exception()) attempt.retry();  // pending again; the second call succeeds
  // [/retry]
  std::cout << "retried: " << attempt.result() << "\n";
  std::filesystem::remove(marker);

  // [run-workers]
  auto names = client.scheduler_info().workers;
  auto one = client.run({.workers = {names.front().name}}, process_pid, 0);  // on that worker only
  int scheduler_pid = client.run_on_scheduler(process_pid, 0);               // in the scheduler's process
  // [/run-workers]
  std::cout << one.size() << " worker ran it; the scheduler is process " << scheduler_pid << "\n";

  // [copies]
  auto blocks = client.map({.pure = false}, total, std::vector<std::vector<double>>(4, std::vector<double>(8, 1.0)));
  distrib::wait(blocks);
  std::map<std::string, std::uint64_t> bytes = client.nbytes(blocks);  // key -> size of its value
  client.replicate(blocks, 2);  // two workers hold each value
  client.replicate(blocks, 1);  // and now one again
  client.rebalance(blocks);     // moves values so that workers store about as many bytes
  client.rebalance();           // the same over every value in memory
  // [/copies]
  std::cout << bytes.size() << " sizes known\n";
}

// [by-address]
int run_on(const std::string& address) {
  distrib::Client client(address, {.connect_timeout = 5s, .name = "user-guide"});
  client.wait_for_workers(1, 30s);  // TimeoutError if no worker joins in time
  std::cout << client.n_workers() << " workers at " << client.scheduler_address() << "\n";
  submit_examples(client);
  client.close();  // disconnect; the scheduler and workers keep running
  return 0;
}
// [/by-address]

// [logging]
void setup_logging() {
  // distrib logs through the spdlog logger "distrib" (stderr, level "warn" by default).
  // Register your own under that name before distrib first logs, or adjust it later.
  auto logger = spdlog::stderr_color_mt("distrib");
  logger->set_level(spdlog::level::info);
}
// [/logging]

// [main]
int main(int argc, char** argv) {
  distrib::init(argc, argv);  // first thing: in a LocalCluster child it runs the role and exits
  std::cout << std::unitbuf;  // each line as it comes: a test that times out shows where
  setup_logging();
  if (argc > 1) return run_on(argv[1]);

  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1});
  distrib::Client client(cluster);
  submit_examples(client);
  future_examples(client);
  map_gather_examples(client);
  error_examples(client);
  submit_option_examples(client);
  scatter_examples(client);
  future_vector_examples(client);
  cancel_examples(client);
  waiting_examples(client);
  graph_examples(client);
  introspection_examples(client);
  progress_examples(client);
  launching_examples(client);
  ndarray_examples(client);
  array_examples(client);
  coordination_examples(client);
  client_ops_examples(client);
  restart_examples(client);  // last: it cancels every future made above
  client.shutdown();  // stops the scheduler and the workers (and this cluster's children)

  option_examples();
  memory_examples();
  security_examples();
  scaling_examples();
  configuration_examples();
  std::cout << slurm_script();
  if (std::getenv("DISTRIB_SCHEDULER_FILE") != nullptr) return run_under_a_launcher();
  (void)&over_ssh;
  (void)&from_a_scheduler_file;
  (void)&ship_tasks;
  return 0;
}
// [/main]
