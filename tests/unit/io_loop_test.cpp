// Unit tests of the polling io loop (run_io, spin_until) and of the task thread pool that
// polls before it sleeps: work posted from other threads must run whether the thread is
// still polling or already asleep, and the loops must end when stopped or out of work.
#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "comm/io_loop.hpp"
#include "worker/thread_pool.hpp"

namespace distrib::detail {
namespace {

using namespace std::chrono_literals;

TEST(RunIo, RunsHandlersPostedFromAnotherThreadAndEndsWhenOutOfWork) {
  for (auto spin : {0us, 200us, 5000us}) {
    asio::io_context io(1);
    auto work = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(io.get_executor());
    std::atomic<int> ran{0};
    std::thread loop([&] { run_io(io, spin); });
    for (int i = 0; i < 100; ++i) asio::post(io, [&] { ++ran; });
    std::promise<void> last;
    asio::post(io, [&] { last.set_value(); });
    ASSERT_EQ(last.get_future().wait_for(30s), std::future_status::ready) << "spin " << spin.count();
    work.reset();  // no more work: run_io returns as io_context::run does
    loop.join();
    EXPECT_EQ(ran.load(), 100);
    EXPECT_TRUE(io.stopped());
  }
}

TEST(RunIo, ReturnsWhenStoppedWhileWaiting) {
  asio::io_context io(1);
  auto work = asio::make_work_guard(io);
  std::promise<void> started;
  std::thread loop([&] {
    asio::post(io, [&] { started.set_value(); });
    run_io(io, 200us);
  });
  ASSERT_EQ(started.get_future().wait_for(30s), std::future_status::ready);
  std::this_thread::sleep_for(2ms);  // past the window: the loop is blocked, not polling
  io.stop();
  loop.join();
  EXPECT_TRUE(io.stopped());
}

TEST(SpinUntil, SeesAConditionSetByAnotherThreadAndGivesUpAfterTheWindow) {
  std::atomic<bool> flag{false};
  std::thread setter([&] { flag = true; });
  // A window long enough for any scheduler: true as soon as the other thread ran.
  EXPECT_TRUE(spin_until([&] { return flag.load(); }, std::chrono::microseconds(30'000'000)));
  setter.join();

  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(spin_until([] { return false; }, 1000us));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1000us);
  EXPECT_FALSE(spin_until([] { return false; }, 0us));  // no window: one look
}

TEST(ThreadPool, RunsJobsWhetherItsThreadsPollOrSleep) {
  ThreadPool pool(2);
  for (int round = 0; round < 3; ++round) {
    std::promise<int> done;
    pool.submit([&] { done.set_value(round); });
    auto f = done.get_future();
    ASSERT_EQ(f.wait_for(30s), std::future_status::ready);
    EXPECT_EQ(f.get(), round);
    std::this_thread::sleep_for(5ms);  // let the threads pass their polling window and sleep
  }
  // Many jobs back to back, from two threads: every one runs once.
  std::atomic<int> count{0};
  std::promise<void> all;
  constexpr int kJobs = 2000;
  auto submit_half = [&] {
    for (int i = 0; i < kJobs / 2; ++i)
      pool.submit([&] {
        if (++count == kJobs) all.set_value();
      });
  };
  std::thread a(submit_half), b(submit_half);
  a.join();
  b.join();
  ASSERT_EQ(all.get_future().wait_for(30s), std::future_status::ready);
  EXPECT_EQ(count.load(), kJobs);
}

}  // namespace
}  // namespace distrib::detail
