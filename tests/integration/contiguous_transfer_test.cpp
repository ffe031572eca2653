// Strings and vectors of numbers moving through a cluster without copies (codec.hpp): a
// scatter sends from the caller's own memory and returns only once nothing refers to it, an
// rvalue scatter or a task's returned vector is sent from its own memory, and results passed
// together as one vector argument are assembled with the counts their encoding needs.
#include <gtest/gtest.h>

#include <cstdint>
#include <distrib/distrib.hpp>
#include <numeric>
#include <string>
#include <vector>

namespace {

std::vector<float> make_floats(std::int64_t n, float start) {
  std::vector<float> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}
DISTRIB_TASK(make_floats);

double sum_floats(std::vector<float> v) { return std::accumulate(v.begin(), v.end(), 0.0); }
DISTRIB_TASK(sum_floats);

double sum_rows(std::vector<std::vector<float>> rows) {
  double s = 0;
  for (const auto& r : rows) s += std::accumulate(r.begin(), r.end(), 0.0);
  return s;
}
DISTRIB_TASK(sum_rows);

std::int64_t count_char(std::string s, char c) { return std::count(s.begin(), s.end(), c); }
DISTRIB_TASK(count_char);

double sum_of(const std::vector<float>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

class ContiguousTransfer : public ::testing::TestWithParam<bool> {};

TEST_P(ContiguousTransfer, ScatterSendsFromTheCallersMemoryAndLetsGoOfIt) {
  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = GetParam()});
  distrib::Client client(cluster);
  auto original = make_floats(1 << 20, 0.5f);  // 4 MB: lent, not copied
  auto data = original;
  auto f = client.scatter(data, {.hash = false});
  // scatter has returned: the workers hold their own copy, the memory is ours again.
  std::fill(data.begin(), data.end(), -1.0f);
  data.clear();
  data.shrink_to_fit();
  EXPECT_EQ(f.result(), original);
  EXPECT_DOUBLE_EQ(client.submit(sum_floats, f).result(), sum_of(original));

  // Hashed keys read the same memory: the same content gives the same key. A scatter of a
  // value the client already holds sends nothing (it once ran its sending step anyway, after
  // returning, on a dead stack frame: repeated to make that likely to show).
  auto again = original;
  EXPECT_EQ(client.scatter(original).key(), client.scatter(again).key());
  auto held = client.scatter(std::string("held"));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(client.scatter(std::string("held")).key(), held.key());

  // A moved-in string is sent from its own buffer.
  std::string text(3 << 20, 'a');
  text[12345] = 'b';
  auto s = client.scatter(std::move(text));
  EXPECT_EQ(client.submit(count_char, s, 'b').result(), 1);
  auto back = s.result();
  ASSERT_EQ(back.size(), std::size_t{3} << 20);
  EXPECT_EQ(back[12345], 'b');
}

TEST_P(ContiguousTransfer, ReturnedVectorsAndVectorsOfThemCrossWorkers) {
  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .processes = GetParam()});
  distrib::Client client(cluster);
  std::vector<distrib::Future<std::vector<float>>> parts;
  double expected = 0;
  for (int i = 0; i < 4; ++i) {
    const std::int64_t n = 100'000 + i * 77;  // large enough to be sent from the task's memory
    parts.push_back(client.submit({.workers = {i % 2 ? "worker-1" : "worker-0"}}, make_floats, n, float(i)));
    expected += sum_of(make_floats(n, float(i)));
  }
  EXPECT_DOUBLE_EQ(client.submit({.workers = {"worker-0"}}, sum_rows, parts).result(), expected);
  auto gathered = client.gather(parts);
  ASSERT_EQ(gathered.size(), 4u);
  EXPECT_EQ(gathered[3], make_floats(100'000 + 3 * 77, 3.0f));
  // The same through an in-worker fetch: the consumer runs where only one part lives.
  EXPECT_DOUBLE_EQ(client.submit({.workers = {"worker-0"}}, sum_floats, parts[1]).result(),
                   sum_of(make_floats(100'077, 1.0f)));
}

INSTANTIATE_TEST_SUITE_P(Modes, ContiguousTransfer, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "processes" : "threads"; });

}  // namespace
