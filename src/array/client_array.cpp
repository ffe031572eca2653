// The Client's entry points for chunked arrays: the lowered graph goes to the scheduler
// in one message, like any Graph.
#include "array/node.hpp"
#include "distrib/client.hpp"

namespace distrib {

namespace detail_array = array::detail;

Future<NDArray> Client::compute(const array::Array& a) {
  auto lowered = detail_array::lower({a});
  const std::string key = detail_array::add_concatenate(lowered, a, 0);
  return Future<NDArray>(submit_graph(lowered.graph, {key}).front());
}

array::Array Client::persist(const array::Array& a) {
  auto lowered = detail_array::lower({a});
  const auto& keys = lowered.block_keys.front();
  std::vector<detail::FutureHandle> handles;
  if (a.node()->kind == detail_array::NodeKind::futures) return a;  // already on the cluster
  handles = submit_graph(lowered.graph, keys);
  return detail_array::from_futures(a, std::move(handles));
}

array::Array Client::scatter(const array::Array& a) { return persist(a); }

Future<double> Client::submit(const array::FullReduction& reduction, const array::Array& a) {
  array::Array r = reduction(a);
  auto lowered = detail_array::lower({r});
  const std::string key = detail_array::add_to_scalar(lowered, lowered.block_keys.front().front());
  return Future<double>(submit_graph(lowered.graph, {key}).front());
}

}  // namespace distrib

namespace distrib::array::detail {

Array from_futures(const Array& like, std::vector<distrib::detail::FutureHandle> blocks) {
  auto n = std::make_shared<Node>();
  n->kind = NodeKind::futures;
  n->shape = like.shape();
  n->chunks = like.chunks();
  n->dtype = like.dtype();
  n->name = like.name();
  n->blocks = std::move(blocks);
  return Array(n);
}

}  // namespace distrib::array::detail
