// distrib::array on a real cluster (a 2-worker LocalCluster in processes mode):
// client.compute, client.persist, client.scatter + client.submit(da::mean / da::std, ...),
// cancelling those futures, dot, and from_ndarray data travelling with the graph. Every
// cluster result is checked against the same array computed locally (Array::compute) or
// against naive loops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <distrib/distrib.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "../ndarray_values.hpp"

namespace da = distrib::array;

namespace distrib {
// gtest prints dtypes by name (found by ADL, so in namespace distrib).
static void PrintTo(DType d, std::ostream* os) { *os << to_string(d); }
}  // namespace distrib

namespace distrib::test {
namespace {

using da::Shape;
using da::Slice;

LocalClusterOptions two_workers() {
  return {.n_workers = 2, .threads_per_worker = 1, .processes = true, .start_timeout = std::chrono::seconds(60)};
}

using test_support::as_doubles;

/// Same shape and dtype, elements within rtol * (|want| + 1).
::testing::AssertionResult close(const NDArray& got, const NDArray& want, double rtol) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << got.shape_string() << ", expected " << want.shape_string();
  if (got.dtype() != want.dtype())
    return ::testing::AssertionFailure() << "dtype " << to_string(got.dtype()) << ", expected "
                                         << to_string(want.dtype());
  const auto g = as_doubles(got), w = as_doubles(want);
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < g.size(); ++i)
    if (!(g[i] == w[i] || std::abs(g[i] - w[i]) <= rtol * (std::abs(w[i]) + 1)) && bad++ == 0) first = i;
  if (bad) {
    std::ostringstream os;
    os.precision(17);
    os << bad << " of " << g.size() << " elements differ; first at flat index " << first << ": got " << g[first]
       << ", expected " << w[first];
    return ::testing::AssertionFailure() << os.str();
  }
  return ::testing::AssertionSuccess();
}

NDArray local_uniform(const Shape& shape, std::uint64_t seed) {
  NDArray a(shape, DType::float64);
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(-1, 1);
  for (auto& x : a.values<double>()) x = dist(gen);
  return a;
}


TEST(ArrayCluster, ComputeMatchesLocalCompute) {
  LocalCluster cluster(two_workers());
  Client client(cluster);

  // Random arrays: a block depends on the seed and its position only.
  auto a = da::random::random({503, 397}, {100, 100}, 7);
  NDArray local = a.compute();
  NDArray remote = client.compute(a).result(120s);
  EXPECT_TRUE(remote.equals(local));
  EXPECT_TRUE(close(remote, local, 0));
  auto n = da::random::normal({300, 200}, {64, 64});  // unseeded: the seed is kept in the Array
  EXPECT_TRUE(client.compute(n).result(120s).equals(n.compute()));
  auto u = da::random::uniform({301, 7}, {50, 7}, -2, 3, 8);
  EXPECT_TRUE(client.compute(u).result(120s).equals(u.compute()));

  // The seed expression.
  auto x = da::random::random({1000, 1000}, {100, 100}, 9);
  auto z = (x + x.T()).mean(0);
  NDArray zr = client.compute(z).result(120s);
  EXPECT_EQ(zr.shape(), (Shape{1000}));
  EXPECT_TRUE(close(zr, z.compute(), 1e-12));

  // Other dtypes and shapes: int64, bool, 0-d results, slices with negative steps.
  auto ar = da::arange(std::int64_t{1003}, da::ChunkSpec{100});
  EXPECT_TRUE(client.compute(ar).result(120s).equals(ar.compute()));
  auto cmp = a > 0.5;
  NDArray cr = client.compute(cmp).result(120s);
  EXPECT_EQ(cr.dtype(), DType::boolean);
  EXPECT_TRUE(cr.equals(cmp.compute()));
  NDArray total = client.compute(a.sum()).result(120s);
  EXPECT_EQ(total.size(), 1);
  EXPECT_TRUE(close(total, a.sum().compute(), 1e-12));
  auto s = a.slice({Slice{-3, 10, -7}, Slice{std::nullopt, std::nullopt, -2}});
  EXPECT_TRUE(client.compute(s).result(120s).equals(s.compute()));
  auto stats = a.var(1, 1, {.split_every = 2});
  EXPECT_TRUE(close(client.compute(stats).result(120s), stats.compute(), 1e-12));
}

TEST(ArrayCluster, PersistKeepsBlocksForLaterComputations) {
  LocalCluster cluster(two_workers());
  Client client(cluster);
  auto a = da::random::random({503, 397}, {100, 100}, 10);
  NDArray local = a.compute();
  {
    auto p = client.persist(a);
    EXPECT_EQ(p.shape(), a.shape());
    EXPECT_EQ(p.chunks(), a.chunks());
    EXPECT_EQ(p.dtype(), a.dtype());
    // 6 x 4 blocks live on the workers.
    EXPECT_TRUE(eventually([&] { return keys_on_cluster(client) >= 24; }, 60s)) << keys_on_cluster(client);

    EXPECT_TRUE(client.compute(p).result(120s).equals(local));
    NDArray doubled = client.compute((p * 2.0).sum()).result(120s);
    EXPECT_TRUE(close(doubled, (a * 2.0).sum().compute(), 1e-12));
    EXPECT_TRUE(close(client.compute((p + 1.0).mean(0)).result(120s), (a + 1.0).mean(0).compute(), 1e-12));
    auto cut = p.slice({Slice{50, 450, 3}, Slice{-1, std::nullopt, -1}});
    EXPECT_TRUE(client.compute(cut).result(120s).equals(a.slice({Slice{50, 450, 3}, Slice{-1, std::nullopt, -1}}).compute()));
    // A persisted array of a persisted array.
    auto q = client.persist(p * 3.0);
    EXPECT_TRUE(close(client.compute(q.max(1)).result(120s), (a * 3.0).max(1).compute(), 0));
    // Persisted blocks are on the cluster: local compute refuses them.
    EXPECT_ANY_THROW(p.compute());
  }
  // The last copies went away: their blocks are released.
  EXPECT_TRUE(eventually([&] { return keys_on_cluster(client) == 0; }, 60s)) << keys_on_cluster(client);
}

TEST(ArrayCluster, ScatterThenSubmitFullReductions) {
  LocalCluster cluster(two_workers());
  Client client(cluster);
  auto x = da::random::normal({20000, 100}, {1000, 100}, 0, 1, 11);
  auto xs = client.scatter(x);
  EXPECT_EQ(xs.shape(), x.shape());
  EXPECT_EQ(xs.chunks(), x.chunks());
  // Its 20 blocks are made on the workers, spread over both.
  EXPECT_TRUE(eventually([&] { return keys_on_cluster(client) >= 20; }, 60s)) << keys_on_cluster(client);
  auto placement = client.has_what();
  EXPECT_EQ(placement.size(), 2u);
  for (const auto& [worker, keys] : placement) EXPECT_FALSE(keys.empty()) << worker << " holds no block";

  Future<double> mean = client.submit(da::mean, xs);
  Future<double> stdev = client.submit(da::std, xs);
  const double local_mean = x.mean().item(), local_std = x.std().item();
  const double m = mean.result(120s), s = stdev.result(120s);
  EXPECT_NEAR(m, local_mean, 1e-9 * (std::abs(local_mean) + 1));
  EXPECT_NEAR(s, local_std, 1e-9 * (std::abs(local_std) + 1));
  EXPECT_NEAR(m, 0.0, 0.01);
  EXPECT_NEAR(s, 1.0, 0.01);

  // Against the values themselves.
  const auto values = as_doubles(x.compute());
  long double sum = 0;
  for (double v : values) sum += v;
  const long double naive_mean = sum / values.size();
  long double m2 = 0;
  for (double v : values) m2 += (v - naive_mean) * (v - naive_mean);
  EXPECT_NEAR(m, static_cast<double>(naive_mean), 1e-9);
  EXPECT_NEAR(s, static_cast<double>(std::sqrt(m2 / values.size())), 1e-9);

  // The other reductions, and a reduction of an array that was not scattered.
  EXPECT_NEAR(client.submit(da::sum, xs).result(120s), static_cast<double>(sum), 1e-9 * (std::abs(sum) + 1));
  EXPECT_NEAR(client.submit(da::var, xs).result(120s), static_cast<double>(m2 / values.size()), 1e-9);
  EXPECT_EQ(client.submit(da::min, xs).result(120s), *std::min_element(values.begin(), values.end()));
  EXPECT_EQ(client.submit(da::max, xs).result(120s), *std::max_element(values.begin(), values.end()));
  EXPECT_NEAR(client.submit(da::mean, xs * 2.0 + 1.0).result(120s), 2 * m + 1, 1e-9);
  EXPECT_NEAR(client.submit(da::std, x).result(120s), s, 1e-9);

  // The scattered array is itself computable on the cluster.
  EXPECT_TRUE(client.compute(xs).result(120s).equals(x.compute()));
}

TEST(ArrayCluster, CancelReductionFutures) {
  LocalCluster cluster(two_workers());
  Client client(cluster);
  auto x = da::random::normal({20000, 100}, {1000, 100}, 0, 1, 12);
  auto xs = client.scatter(x);
  Future<double> mean = client.submit(da::mean, xs);
  Future<double> stdev = client.submit(da::std, xs);
  client.cancel(mean);
  client.cancel(stdev);
  for (auto* f : {&mean, &stdev}) {
    ASSERT_TRUE(f->wait_for(120s));
    EXPECT_EQ(f->status(), FutureStatus::cancelled);
    EXPECT_THROW(f->result(120s), CancelledError);
  }
  // Cancelling again is harmless.
  client.cancel(mean);

  // A whole-array computation cancelled through its future.
  auto big = client.compute((xs * 2.0).sum(0));
  big.cancel();
  ASSERT_TRUE(big.wait_for(120s));
  EXPECT_EQ(big.status(), FutureStatus::cancelled);
  EXPECT_THROW(big.result(120s), CancelledError);

  // The scattered blocks survive cancelling their dependents: new reductions still work.
  const double local_mean = x.mean().item(), local_std = x.std().item();
  EXPECT_NEAR(client.submit(da::mean, xs).result(120s), local_mean, 1e-9);
  EXPECT_NEAR(client.submit(da::std, xs).result(120s), local_std, 1e-9);
  EXPECT_TRUE(close(client.compute((xs * 2.0).sum(0)).result(120s), (x * 2.0).sum(0).compute(), 1e-12));
}

TEST(ArrayCluster, DotMatchesLocal) {
  LocalCluster cluster(two_workers());
  Client client(cluster);
  auto a = da::random::random({300, 200}, {64, 50}, 13);
  auto b = da::random::random({200, 150}, {50, 40}, 14);
  auto d = da::dot(a, b);
  NDArray remote = client.compute(d).result(120s);
  NDArray local = d.compute();
  EXPECT_TRUE(close(remote, local, 1e-12));

  // Naive product.
  const auto A = as_doubles(a.compute()), B = as_doubles(b.compute());
  NDArray naive({300, 150}, DType::float64);
  auto out = naive.values<double>();
  for (int i = 0; i < 300; ++i)
    for (int j = 0; j < 150; ++j) {
      long double acc = 0;
      for (int k = 0; k < 200; ++k) acc += static_cast<long double>(A[i * 200 + k]) * B[k * 150 + j];
      out[i * 150 + j] = static_cast<double>(acc);
    }
  EXPECT_TRUE(close(remote, naive, 1e-12));

  // Persisted operands, matmul, and x . x^T.
  auto pa = client.persist(a), pb = client.persist(b);
  EXPECT_TRUE(close(client.compute(da::matmul(pa, pb)).result(120s), local, 1e-12));
  auto g = da::dot(a, a.T());
  EXPECT_TRUE(close(client.compute(g).result(120s), g.compute(), 1e-12));
}

TEST(ArrayCluster, FromNdarrayDataReachesTheCluster) {
  LocalCluster cluster(two_workers());
  Client client(cluster);
  NDArray A = local_uniform({257, 131}, 15);
  auto arr = da::from_ndarray(A, {50, 40});
  EXPECT_TRUE(client.compute(arr).result(120s).equals(A));
  EXPECT_TRUE(client.compute(client.persist(arr)).result(120s).equals(A));

  // Transposed on the cluster.
  NDArray At = client.compute(arr.T()).result(120s);
  ASSERT_EQ(At.shape(), (Shape{131, 257}));
  const auto a = A.values<double>();
  const auto at = At.values<double>();
  bool same = true;
  for (int i = 0; i < 257 && same; ++i)
    for (int j = 0; j < 131 && same; ++j) same = at[j * 257 + i] == a[i * 131 + j];
  EXPECT_TRUE(same);

  // Reductions of it, on the cluster and through submit.
  long double sum = 0;
  for (double v : a) sum += v;
  NDArray twice = client.compute((arr * 2.0).sum()).result(120s);
  ASSERT_EQ(twice.size(), 1);
  EXPECT_NEAR(as_doubles(twice)[0], static_cast<double>(2 * sum), 1e-9 * (std::abs(2 * sum) + 1));
  EXPECT_NEAR(client.submit(da::sum, arr).result(120s), static_cast<double>(sum), 1e-9 * (std::abs(sum) + 1));

  // Other dtypes.
  std::vector<std::int64_t> iv(1000);
  for (std::size_t k = 0; k < iv.size(); ++k) iv[k] = static_cast<std::int64_t>(k * k) - 5000;
  NDArray I = NDArray::from_values<std::int64_t>(iv, {40, 25});
  EXPECT_TRUE(client.compute(da::from_ndarray(I, {7, 6})).result(120s).equals(I));
  NDArray Bo({33, 3}, DType::boolean);
  auto bv = Bo.values<bool>();
  for (std::size_t k = 0; k < bv.size(); ++k) bv[k] = k % 3 == 1;
  EXPECT_TRUE(client.compute(da::from_ndarray(Bo, {10, 2})).result(120s).equals(Bo));
  std::vector<float> fv(64);
  for (std::size_t k = 0; k < fv.size(); ++k) fv[k] = static_cast<float>(k) / 7.0f;
  NDArray F = NDArray::from_values<float>(fv, {4, 4, 4});
  EXPECT_TRUE(client.compute(da::from_ndarray(F, {3, 2, 4})).result(120s).equals(F));
}

}  // namespace
}  // namespace distrib::test
