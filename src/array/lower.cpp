// Lowering: from array expressions to tasks. Work starts from the blocks that are asked
// for, so unneeded blocks are never lowered (culling). Fusible nodes (sources,
// elementwise operations, transposes, slices, reshapes, casts) do not get tasks of their
// own: their blocks are computed inside the task that needs them, as one block program,
// which may end with the first stage of a reduction. A source block used by two tasks is
// made twice (it is cheaper to generate than to move), except that chunks of a reduction
// needing the same source blocks become one task that makes them once (x + x.T: the chunks
// of blocks (i, j) and (j, i) both need x[i, j] and x[j, i]).
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>
#include <unordered_set>

#include "array/node.hpp"
#include "array/tasks.hpp"

namespace distrib::array::detail {

namespace {
using distrib::detail::TaskArgument;
using distrib::detail::TaskFunction;

struct Ref {
  std::string key;
  distrib::detail::FutureHandle future;  // set for blocks already on a cluster
  std::int32_t pick = -1;                // k: element k of a group's partials
};

// At most this many reduction chunks share one task (bounds the blocks it holds at once).
constexpr std::size_t kMaxGroup = 4;

// The output blocks of each reduction that a lowering asks for. A first pass records them,
// so that the second groups only chunks whose results are all needed.
using Requested = std::map<const Node*, std::set<Shape>>;

TaskArgument arg_of(const Ref& r) {
  TaskArgument a;
  if (r.future) a.dependency = r.future;
  else a.graph_key = r.key;
  return a;
}

TaskArgument value_arg(Value v) {
  TaskArgument a;
  a.value = std::move(v);
  return a;
}

std::string index_suffix(const Shape& b) {
  std::string s;
  for (auto i : b) s += "," + std::to_string(i);
  return s;
}

std::int64_t flat_index(const Shape& numblocks, const Shape& b) {
  std::int64_t f = 0;
  for (std::size_t k = 0; k < b.size(); ++k) f = f * numblocks[k] + b[k];
  return f;
}

// One task's program while it is being built.
struct ProgramBuilder {
  BlockProgram program;
  std::vector<Ref> inputs;
  std::map<std::string, std::int32_t> input_index;
  std::map<std::pair<const Node*, Shape>, std::int32_t> memo;
  std::map<const Node*, std::int32_t> generators;

  std::int32_t push(Instr in) {
    program.instrs.push_back(std::move(in));
    return static_cast<std::int32_t>(program.instrs.size() - 1);
  }
  std::int32_t input(const Ref& r) {
    auto [it, fresh] = input_index.emplace(r.key, static_cast<std::int32_t>(inputs.size()));
    if (fresh) inputs.push_back(r);
    return it->second;
  }
};

class Lowerer {
 public:
  /// With `recording`, only notes what is asked for in `requested` (nothing is added to
  /// `graph`); otherwise groups reduction chunks among the output blocks `requested` holds.
  Lowerer(Graph& graph, bool fuse, Requested& requested, bool recording)
      : graph_(graph), fuse_(fuse), requested_(requested), recording_(recording) {}

  // The key that holds block `b` of `n`, adding the tasks that make it.
  Ref block(const Node& n, const Shape& b) {
    const std::string key = n.name + index_suffix(b);
    if (n.kind == NodeKind::futures) {
      const auto& f = n.blocks.at(static_cast<std::size_t>(flat_index(numblocks_of(n.chunks), b)));
      return Ref{distrib::detail::future_key(*f), f};
    }
    if (added_.count(key)) return Ref{key, nullptr};
    switch (n.kind) {
      case NodeKind::data: data_block(n, b, key); break;
      case NodeKind::reduce: reduce_block(n, b, key); break;
      case NodeKind::rechunk: rechunk_block(n, b, key); break;
      case NodeKind::dot: dot_block(n, b, key); break;
      default: {
        ProgramBuilder pb;
        pb.program.result = emit(pb, n, b, true);
        add_program_task(key, pb);
      }
    }
    return Ref{key, nullptr};
  }

 private:
  void add(const std::string& key, const TaskFunction& fn, std::vector<TaskArgument> args) {
    added_.insert(key);
    if (!recording_) graph_.add_task(Graph::Node{key, &fn, std::move(args)});
  }

  void add_program_task(const std::string& key, ProgramBuilder& pb) {
    if (recording_) {
      added_.insert(key);  // a dry run only needs to know the task exists
      return;
    }
    std::vector<TaskArgument> args;
    args.push_back(value_arg(encode_value(pb.program)));
    for (const auto& r : pb.inputs) args.push_back(arg_of(r));
    add(key, block_task(), std::move(args));
  }

  // Adds the instructions that compute block `b` of `n` inside the current task.
  std::int32_t emit(ProgramBuilder& pb, const Node& n, const Shape& b, bool root) {
    auto memo_key = std::make_pair(&n, b);
    if (auto it = pb.memo.find(memo_key); it != pb.memo.end()) return it->second;
    std::int32_t id;
    const Shape shape = block_shape(n.chunks, b);
    if (!n.fusible() || (!fuse_ && !root)) {
      Instr in;
      in.kind = static_cast<std::uint8_t>(InstrKind::input);
      in.a = pb.input(block(n, b));
      in.shape = shape;
      id = pb.push(std::move(in));
    } else {
      id = emit_fused(pb, n, b, shape);
    }
    pb.memo.emplace(memo_key, id);
    return id;
  }

  std::int32_t emit_fused(ProgramBuilder& pb, const Node& n, const Shape& b, const Shape& shape) {
    Instr in;
    in.shape = shape;
    switch (n.kind) {
      case NodeKind::source: {
        auto [it, fresh] = pb.generators.emplace(&n, static_cast<std::int32_t>(pb.program.generators.size()));
        if (fresh) pb.program.generators.push_back(n.generator);
        in.kind = static_cast<std::uint8_t>(InstrKind::generate);
        in.a = it->second;
        in.v1 = block_offset(n.chunks, b);
        return pb.push(std::move(in));
      }
      case NodeKind::elementwise: {
        in.code = static_cast<std::uint8_t>(n.op);
        if (n.scalar_side != 0) {
          in.kind = static_cast<std::uint8_t>(n.scalar_side == 1 ? InstrKind::scalar_right : InstrKind::scalar_left);
          in.a = emit(pb, *n.inputs[0], b, false);
          in.scalar = n.scalar;
        } else if (n.inputs.size() == 1) {
          in.kind = static_cast<std::uint8_t>(InstrKind::unary);
          in.a = emit(pb, *n.inputs[0], b, false);
        } else {
          in.kind = static_cast<std::uint8_t>(InstrKind::binary);
          in.a = broadcast_operand(pb, n, *n.inputs[0], b);
          in.b = broadcast_operand(pb, n, *n.inputs[1], b);
        }
        return pb.push(std::move(in));
      }
      case NodeKind::transpose: {
        const Node& x = *n.inputs[0];
        Shape c(b.size());
        for (std::size_t k = 0; k < b.size(); ++k) c[static_cast<std::size_t>(n.axes[k])] = b[k];
        in.kind = static_cast<std::uint8_t>(InstrKind::transpose);
        in.a = emit(pb, x, c, false);
        in.v1.assign(n.axes.begin(), n.axes.end());
        return pb.push(std::move(in));
      }
      case NodeKind::slice: {
        const Node& x = *n.inputs[0];
        Shape c(b.size());
        in.v1.resize(b.size());
        in.v2.resize(b.size());
        for (std::size_t k = 0; k < b.size(); ++k) {
          const auto& ax = n.slice[k];
          c[k] = ax.in_block[static_cast<std::size_t>(b[k])];
          in.v1[k] = ax.start[static_cast<std::size_t>(b[k])];
          in.v2[k] = ax.step;
        }
        in.kind = static_cast<std::uint8_t>(InstrKind::slice);
        in.a = emit(pb, x, c, false);
        return pb.push(std::move(in));
      }
      case NodeKind::reshape: {
        const Node& x = *n.inputs[0];
        Shape c(x.shape.size(), 0);
        for (std::size_t k = 0; k < b.size(); ++k)
          if (n.reshape_from[k] >= 0) c[static_cast<std::size_t>(n.reshape_from[k])] = b[k];
        in.kind = static_cast<std::uint8_t>(InstrKind::reshape);
        in.a = emit(pb, x, c, false);
        return pb.push(std::move(in));
      }
      case NodeKind::astype:
        in.kind = static_cast<std::uint8_t>(InstrKind::cast);
        in.code = static_cast<std::uint8_t>(n.dtype);
        in.a = emit(pb, *n.inputs[0], b, false);
        return pb.push(std::move(in));
      default:
        throw std::logic_error("distrib::array: node is not fusible");
    }
  }

  // An operand of a binary operation, aligned to the output's axes (size-1 axes stretch).
  std::int32_t broadcast_operand(ProgramBuilder& pb, const Node& out, const Node& x, const Shape& b) {
    const std::size_t n = out.shape.size(), nx = x.shape.size(), lead = n - nx;
    Shape c(nx);
    for (std::size_t k = 0; k < nx; ++k) c[k] = x.shape[k] == 1 ? 0 : b[k + lead];
    std::int32_t id = emit(pb, x, c, false);
    if (lead == 0) return id;
    Instr r;
    r.kind = static_cast<std::uint8_t>(InstrKind::reshape);
    r.a = id;
    r.shape = Shape(lead, 1);
    auto xs = block_shape(x.chunks, c);
    r.shape.insert(r.shape.end(), xs.begin(), xs.end());
    return pb.push(std::move(r));
  }

  void data_block(const Node& n, const Shape& b, const std::string& key) {
    if (recording_) {
      added_.insert(key);  // no need to copy the data for a dry run
      return;
    }
    std::vector<Piece> pieces{Piece{block_offset(n.chunks, b), Shape(b.size(), 0), block_shape(n.chunks, b)}};
    NDArray block = assemble(block_shape(n.chunks, b), n.dtype, pieces, std::span<const NDArray>(&n.data, 1));
    std::vector<TaskArgument> args;
    args.push_back(value_arg(encode_value(block)));
    add(key, value_task(), std::move(args));
  }

  // The input blocks of reduction `n` that fold into its output block `ob`.
  std::vector<Shape> chunk_blocks(const Node& n, const Shape& ob) const {
    const Node& x = *n.inputs[0];
    const std::size_t nx = x.shape.size();
    std::vector<bool> reduced(nx, false);
    for (int a : n.axes) reduced[static_cast<std::size_t>(a)] = true;
    // The output block's index along each kept input axis.
    Shape fixed(nx, 0), grid(nx, 1);
    for (std::size_t k = 0, o = 0; k < nx; ++k) {
      if (reduced[k]) {
        grid[k] = static_cast<std::int64_t>(x.chunks[k].size());
        if (n.keepdims) ++o;
      } else {
        fixed[k] = ob[o++];
      }
    }
    std::vector<Shape> blocks;
    for (const auto& r : all_blocks(grid)) {
      Shape xb(nx);
      for (std::size_t k = 0; k < nx; ++k) xb[k] = reduced[k] ? r[k] : fixed[k];
      blocks.push_back(std::move(xb));
    }
    return blocks;
  }

  static std::string token_of_node(const Node& n) { return n.name.substr(n.name.find('-') + 1); }

  ReduceSpec chunk_spec(const Node& n, const Shape& xb) const {
    const Node& x = *n.inputs[0];
    ReduceSpec spec;
    spec.active = true;
    spec.kind = static_cast<std::uint8_t>(n.reduce_kind);
    spec.axes.assign(n.axes.begin(), n.axes.end());
    spec.flat_arg = n.flat_arg;
    spec.block_offset = block_offset(x.chunks, xb);
    spec.global_shape = x.shape;
    return spec;
  }

  // What chunk `xb` of reduction `n` reads: its generated blocks and input keys, sorted.
  // Empty if it reads nothing worth sharing.
  std::string chunk_sources(const Node& n, const Shape& xb) {
    ProgramBuilder pb;
    emit(pb, *n.inputs[0], xb, true);
    std::vector<const Node*> generator_node(pb.generators.size());
    for (const auto& [node, index] : pb.generators) generator_node[static_cast<std::size_t>(index)] = node;
    std::vector<std::string> sources;
    for (const auto& in : pb.program.instrs)
      if (in.kind == static_cast<std::uint8_t>(InstrKind::generate))
        sources.push_back(generator_node[static_cast<std::size_t>(in.a)]->name + index_suffix(in.v1));
    for (const auto& r : pb.inputs) sources.push_back("input:" + r.key);
    if (sources.size() < 2) return {};  // one block: nothing another chunk could share
    std::sort(sources.begin(), sources.end());
    std::string joined;
    for (const auto& s : sources) joined += s + ";";
    return joined;
  }

  // The expression `n` computes at block `b` (transposed if `t`), with transposes pushed
  // down to the leaves and commutative operands sorted: equal texts mean equal blocks.
  // Empty where that is not known (broadcasting, transposes of more than 2 axes).
  std::string canonical(const Node& n, const Shape& b, bool t) const {
    if (t && n.shape.size() != 2) return {};
    auto leaf = [&] { return n.name + index_suffix(b) + (t ? "'" : ""); };
    switch (n.kind) {
      case NodeKind::transpose:
        if (n.shape.size() != 2 || n.axes != std::vector<int>{1, 0}) return {};
        return canonical(*n.inputs[0], Shape{b[1], b[0]}, !t);  // (a.T)[i, j] = a[j, i].T
      case NodeKind::astype: {
        std::string in = canonical(*n.inputs[0], b, t);
        return in.empty() ? in : "astype" + std::to_string(static_cast<int>(n.dtype)) + "(" + in + ")";
      }
      case NodeKind::elementwise: {
        for (const auto& in : n.inputs)
          if (in->shape != n.shape) return {};  // broadcasting: blocks of other shapes
        std::vector<std::string> operands;
        for (const auto& in : n.inputs) {
          operands.push_back(canonical(*in, b, t));
          if (operands.back().empty()) return {};
        }
        const bool commutes = n.op == OpCode::add || n.op == OpCode::mul || n.op == OpCode::eq || n.op == OpCode::ne;
        if (commutes && n.scalar_side == 0) std::sort(operands.begin(), operands.end());
        char scalar[64] = "";
        if (n.scalar_side != 0) std::snprintf(scalar, sizeof scalar, "%d:%a", n.scalar_side, n.scalar);
        std::string text = std::string(op_name(n.op)) + scalar + "(";
        for (const auto& o : operands) text += o + ",";
        return text + ")";
      }
      default:
        return leaf();  // a source, slice, reshape or computed block: known by name and index
    }
  }

  // The earlier member of `members` whose block, transposed, is member k's block, or k.
  std::size_t mirror_of(const Node& x, const std::vector<Shape>& members, std::size_t k) const {
    const Shape& b = members[k];
    if (b.size() != 2) return k;
    for (std::size_t m = 0; m < k; ++m) {
      if (members[m] != Shape{b[1], b[0]}) continue;
      const std::string mine = canonical(x, b, false);
      if (!mine.empty() && mine == canonical(x, members[m], true)) return m;
    }
    return k;
  }

  // Chunks of `n` (among its requested output blocks) with the same sources, in groups.
  struct GroupPlan {
    std::vector<std::vector<Shape>> groups;                          // groups of 2 or more chunks
    std::map<Shape, std::pair<std::size_t, std::int32_t>> member;   // chunk -> (group, pick)
  };
  const GroupPlan& group_plan(const Node& n) {
    auto [it, fresh] = plans_.try_emplace(&n);
    if (!fresh || recording_ || !fuse_) return it->second;
    std::map<std::string, std::vector<Shape>> by_sources;
    std::vector<std::string> order;  // deterministic group order: first appearance
    if (auto req = requested_.find(&n); req != requested_.end())
      for (const auto& ob : req->second)
        for (auto& xb : chunk_blocks(n, ob)) {
          std::string sources = chunk_sources(n, xb);
          if (sources.empty()) continue;
          auto& members = by_sources[sources];
          if (members.empty()) order.push_back(sources);
          if (members.size() < kMaxGroup) members.push_back(std::move(xb));
        }
    GroupPlan& plan = it->second;
    for (const auto& sources : order) {
      auto& members = by_sources[sources];
      if (members.size() < 2) continue;
      for (std::size_t k = 0; k < members.size(); ++k)
        plan.member[members[k]] = {plan.groups.size(), static_cast<std::int32_t>(k)};
      plan.groups.push_back(std::move(members));
    }
    return plan;
  }

  // The task computing chunk `xb` of `n`: its own, or its group's.
  Ref chunk_task(const Node& n, const Shape& xb) {
    const Node& x = *n.inputs[0];
    const std::string token = token_of_node(n), prefix = reduce_name(n.reduce_kind);
    const GroupPlan& plan = group_plan(n);
    if (auto m = plan.member.find(xb); m != plan.member.end()) {
      const auto& members = plan.groups[m->second.first];
      // Which chunks a group holds depends on what this lowering asks for, and the
      // scheduler keeps a key's first definition: the key names every member, in order.
      std::string member_list = token;
      for (const auto& member : members) member_list += ";" + index_suffix(member);
      const std::string group_key = prefix + "_group-" + token_of(member_list) + index_suffix(members.front());
      if (!added_.count(group_key)) {
        ProgramBuilder pb;
        ProgramGroup group;
        for (std::size_t k = 0; k < members.size(); ++k) {
          const std::size_t mirror = mirror_of(x, members, k);
          if (mirror < k) {
            group.results.push_back(group.results[mirror]);
            group.transposed.push_back(1);
          } else {
            group.results.push_back(emit(pb, x, members[k], true));  // shared blocks come from pb.memo
            group.transposed.push_back(0);
          }
          group.reduces.push_back(chunk_spec(n, members[k]));
        }
        group.shared = std::move(pb.program);
        std::vector<TaskArgument> args{value_arg(encode_value(group))};
        for (const auto& r : pb.inputs) args.push_back(arg_of(r));
        add(group_key, group_task(), std::move(args));
      }
      return Ref{group_key, nullptr, m->second.second};
    }
    const std::string chunk_key = prefix + "_chunk-" + token + index_suffix(xb);
    if (!added_.count(chunk_key)) {
      ProgramBuilder pb;
      pb.program.result = emit(pb, x, xb, true);
      pb.program.reduce = chunk_spec(n, xb);
      add_program_task(chunk_key, pb);
    }
    return Ref{chunk_key, nullptr};
  }

  // A combine task's spec and arguments over `partials`.
  std::vector<TaskArgument> combine_args(CombineSpec spec, const std::vector<Ref>& partials) {
    spec.picks.clear();
    if (std::any_of(partials.begin(), partials.end(), [](const Ref& r) { return r.pick >= 0; }))
      for (const auto& r : partials) spec.picks.push_back(r.pick);
    std::vector<TaskArgument> args{value_arg(encode_value(spec))};
    for (const auto& r : partials) args.push_back(arg_of(r));
    return args;
  }

  // A reduction's output block: first-stage tasks over the input blocks that fold into it,
  // then combine tasks of `split_every` partials each, the last one finalising.
  void reduce_block(const Node& n, const Shape& ob, const std::string& key) {
    if (recording_) requested_[&n].insert(ob);
    const std::string token = token_of_node(n), prefix = reduce_name(n.reduce_kind);
    std::vector<Ref> level;
    for (const auto& xb : chunk_blocks(n, ob)) level.push_back(chunk_task(n, xb));
    CombineSpec spec;
    spec.kind = static_cast<std::uint8_t>(n.reduce_kind);
    spec.ddof = n.ddof;
    spec.dtype = static_cast<std::uint8_t>(n.dtype);
    spec.shape = block_shape(n.chunks, ob);
    const auto every = static_cast<std::size_t>(n.split_every);
    for (int depth = 0; level.size() > every; ++depth) {
      std::vector<Ref> next;
      for (std::size_t g = 0; g < level.size(); g += every) {
        const std::string combine_key =
            prefix + "_combine-" + token + index_suffix(ob) + "," + std::to_string(depth) + "," + std::to_string(g / every);
        std::vector<Ref> part(level.begin() + static_cast<std::ptrdiff_t>(g),
                              level.begin() + static_cast<std::ptrdiff_t>(std::min(level.size(), g + every)));
        add(combine_key, combine_task(), combine_args(spec, part));
        next.push_back(Ref{combine_key, nullptr});
      }
      level = std::move(next);
    }
    spec.finalize = true;
    add(key, combine_task(), combine_args(spec, level));
  }

  void rechunk_block(const Node& n, const Shape& ob, const std::string& key) {
    const Node& x = *n.inputs[0];
    const std::size_t nd = n.shape.size();
    const Shape start = block_offset(n.chunks, ob), extent = block_shape(n.chunks, ob);
    // Per axis: the input blocks overlapping the output block.
    std::vector<std::vector<std::int64_t>> overlap(nd);
    std::vector<std::vector<std::int64_t>> offsets(nd);
    for (std::size_t k = 0; k < nd; ++k) {
      offsets[k] = chunk_offsets(x.chunks[k]);
      for (std::size_t i = 0; i + 1 < offsets[k].size(); ++i)
        if (offsets[k][i] < start[k] + extent[k] && offsets[k][i + 1] > start[k]) overlap[k].push_back(static_cast<std::int64_t>(i));
      if (overlap[k].empty()) overlap[k].push_back(0);
    }
    Shape counts(nd);
    for (std::size_t k = 0; k < nd; ++k) counts[k] = static_cast<std::int64_t>(overlap[k].size());
    AssembleSpec spec{extent, static_cast<std::uint8_t>(n.dtype), {}};
    std::vector<TaskArgument> inputs;
    for (const auto& sel : all_blocks(counts)) {
      Shape ib(nd);
      Piece p;
      for (std::size_t k = 0; k < nd; ++k) {
        ib[k] = overlap[k][static_cast<std::size_t>(sel[k])];
        const std::int64_t lo = std::max(start[k], offsets[k][static_cast<std::size_t>(ib[k])]);
        const std::int64_t hi = std::min(start[k] + extent[k], offsets[k][static_cast<std::size_t>(ib[k]) + 1]);
        p.src_start.push_back(lo - offsets[k][static_cast<std::size_t>(ib[k])]);
        p.dst_start.push_back(lo - start[k]);
        p.extent.push_back(std::max<std::int64_t>(0, hi - lo));
      }
      spec.pieces.push_back(std::move(p));
      inputs.push_back(arg_of(block(x, ib)));
    }
    std::vector<TaskArgument> args{value_arg(encode_value(spec))};
    for (auto& a : inputs) args.push_back(std::move(a));
    add(key, assemble_task(), std::move(args));
  }

  void dot_block(const Node& n, const Shape& ob, const std::string& key) {
    const Node& a = *n.inputs[0];
    const Node& b = *n.inputs[1];
    const auto k = static_cast<std::int64_t>(a.chunks[1].size());
    std::vector<TaskArgument> args{value_arg(encode_value(DotSpec{static_cast<std::uint8_t>(n.dtype), k}))};
    for (std::int64_t i = 0; i < k; ++i) args.push_back(arg_of(block(a, {ob[0], i})));
    for (std::int64_t i = 0; i < k; ++i) args.push_back(arg_of(block(b, {i, ob[1]})));
    add(key, dot_task(), std::move(args));
  }

  Graph& graph_;
  bool fuse_;
  Requested& requested_;
  bool recording_;
  std::unordered_set<std::string> added_;
  std::map<const Node*, GroupPlan> plans_;
};

Lowered lower_with(const std::vector<Array>& targets, bool fuse) {
  for (const auto& t : targets)
    if (!t.valid()) throw std::invalid_argument("distrib::array: cannot compute an empty Array");
  Requested requested;
  if (fuse) {
    Graph unused;
    Lowerer dry_run(unused, fuse, requested, true);
    for (const auto& t : targets)
      for (const auto& b : all_blocks(t.numblocks())) dry_run.block(*t.node(), b);
  }
  Lowered out;
  Lowerer lowerer(out.graph, fuse, requested, false);
  for (const auto& t : targets) {
    std::vector<std::string> keys;
    for (const auto& b : all_blocks(t.numblocks())) keys.push_back(lowerer.block(*t.node(), b).key);
    out.block_keys.push_back(std::move(keys));
  }
  return out;
}
}  // namespace

Lowered lower(const std::vector<Array>& targets) { return lower_with(targets, true); }

std::string add_concatenate(Lowered& lowered, const Array& a, std::size_t target) {
  const auto& keys = lowered.block_keys.at(target);
  if (keys.size() == 1 && lowered.graph.contains(keys[0])) return keys[0];
  AssembleSpec spec{a.shape(), static_cast<std::uint8_t>(a.dtype()), {}};
  std::vector<TaskArgument> args;
  std::size_t i = 0;
  const auto blocks = all_blocks(a.numblocks());
  std::vector<TaskArgument> inputs;
  for (const auto& b : blocks) {
    spec.pieces.push_back(Piece{Shape(b.size(), 0), block_offset(a.chunks(), b), block_shape(a.chunks(), b)});
    const auto& key = keys[i++];
    if (lowered.graph.contains(key)) {
      inputs.push_back(TaskArgument{{}, nullptr, key, {}, {}, false});
    } else {
      // A persisted block: its future.
      const auto& f = a.node()->blocks.at(i - 1);
      inputs.push_back(TaskArgument{{}, f, {}, {}, {}, false});
    }
  }
  if (blocks.empty()) spec.shape = a.shape();
  args.push_back(value_arg(encode_value(spec)));
  for (auto& in : inputs) args.push_back(std::move(in));
  std::string key = "concatenate-" + token_of(a.name());
  if (!lowered.graph.contains(key)) lowered.graph.add_task(Graph::Node{key, &assemble_task(), std::move(args)});
  return key;
}

std::string add_to_scalar(Lowered& lowered, const std::string& key) {
  std::string item = "item-" + token_of(key);
  if (!lowered.graph.contains(item))
    lowered.graph.add_task(Graph::Node{item, &item_task(), {TaskArgument{{}, nullptr, key, {}, {}, false}}});
  return item;
}

}  // namespace distrib::array::detail

namespace distrib::array {

std::size_t Array::graph_size(bool optimize) const {
  auto lowered = detail::lower_with({*this}, optimize);
  return lowered.graph.size();
}

}  // namespace distrib::array
