// Array::compute(): runs the lowered tasks on a pool of threads in this process, in the
// order they were lowered (inputs first, one reduction branch after another), dropping
// each intermediate block once its last consumer has run.
#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>

#include "array/kernels.hpp"
#include "array/node.hpp"

namespace distrib::array {

namespace {
Value run_graph(const Graph& graph, const std::string& target) {
  const auto& nodes = graph.nodes();
  const std::size_t n = nodes.size();
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < n; ++i) index.emplace(nodes[i].key, i);
  std::vector<std::vector<std::size_t>> dependents(n);
  std::vector<std::size_t> waiting(n, 0), consumers(n, 0);
  for (std::size_t i = 0; i < n; ++i)
    for (const auto& a : nodes[i].args) {
      if (a.dependency)
        throw std::invalid_argument("distrib::array: this array has blocks on a cluster (from client.persist or "
                                    "client.scatter); compute it with client.compute");
      if (a.graph_key.empty()) continue;
      const std::size_t d = index.at(a.graph_key);
      dependents[d].push_back(i);
      ++waiting[i];
      ++consumers[d];
    }
  const std::size_t target_index = index.at(target);

  std::mutex mutex;
  std::condition_variable changed;
  std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> ready;  // lowest index first
  for (std::size_t i = 0; i < n; ++i)
    if (waiting[i] == 0) ready.push(i);
  std::vector<Value> results(n);
  std::size_t finished = 0;
  std::exception_ptr failure;

  auto work = [&] {
    std::unique_lock lock(mutex);
    while (true) {
      changed.wait(lock, [&] { return failure || finished == n || !ready.empty(); });
      if (failure || finished == n) return;
      const std::size_t i = ready.top();
      ready.pop();
      const auto& node = nodes[i];
      std::vector<Value> args;
      args.reserve(node.args.size());
      for (const auto& a : node.args) args.push_back(a.graph_key.empty() ? a.value : results[index.at(a.graph_key)]);
      lock.unlock();
      Value out;
      std::exception_ptr error;
      try {
        out = node.function->invoke(args);
      } catch (...) {
        error = std::current_exception();
      }
      args.clear();
      lock.lock();
      if (error) {
        failure = error;
        changed.notify_all();
        return;
      }
      results[i] = std::move(out);
      for (const auto& a : node.args) {
        if (a.graph_key.empty()) continue;
        const std::size_t d = index.at(a.graph_key);
        if (--consumers[d] == 0 && d != target_index) results[d] = Value{};
      }
      for (std::size_t j : dependents[i])
        if (--waiting[j] == 0) ready.push(j);
      ++finished;
      changed.notify_all();
    }
  };
  const unsigned threads = std::max(1u, std::min<unsigned>(std::thread::hardware_concurrency(), static_cast<unsigned>(n)));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  return results[target_index];
}
}  // namespace

NDArray Array::compute() const {
  auto lowered = detail::lower({*this});
  const std::string key = detail::add_concatenate(lowered, *this, 0);
  return decode_value<NDArray>(run_graph(lowered.graph, key));
}

double Array::item() const {
  if (size() != 1)
    throw std::invalid_argument("distrib::array: item() needs a one-element array, not shape " + detail::shape_text(shape()));
  NDArray a = detail::cast(compute(), DType::float64);
  return a.values<double>()[0];
}

}  // namespace distrib::array
