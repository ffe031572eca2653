#include "distrib/graph.hpp"

#include <stdexcept>

namespace distrib {

void Graph::add_node(Node node) {
  if (node.key.empty()) throw std::invalid_argument("distrib::Graph: a task needs a key");
  if (index_.count(node.key)) throw std::invalid_argument("distrib::Graph: key '" + node.key + "' is already in the graph");
  for (const auto& a : node.args)
    if (!a.graph_key.empty() && !index_.count(a.graph_key))
      throw std::invalid_argument("distrib::Graph: '" + node.key + "' uses '" + a.graph_key +
                                  "', which is not a task of this graph");
  index_.emplace(node.key, nodes_.size());
  nodes_.push_back(std::move(node));
}

}  // namespace distrib
