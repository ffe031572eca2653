// Unit tests of the worker's memory policy (src/worker/memory_policy.*): each threshold of
// Dask's distributed.worker.memory.* against made-up samples, with the time passed in.
#include "worker/memory_policy.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace distrib::detail::wrk {
namespace {

using namespace std::chrono_literals;
using Clock = MemoryPolicy::Clock;

// A limit whose thresholds are round numbers: target 600000, spill 700000, pause 800000,
// terminate 950000.
constexpr std::uint64_t kLimit = 1'000'000;
const Clock::time_point t0 = Clock::time_point{} + 1h;

MemoryPolicyOptions options(MemoryFractions fractions = {}) {
  MemoryPolicyOptions o;
  o.memory_limit = kLimit;
  o.fractions = fractions;
  return o;
}

MemorySample at(std::uint64_t process, std::uint64_t managed, std::uint64_t spilling = 0) {
  return MemorySample{.process_bytes = process, .managed_bytes = managed, .spilled_bytes = 0, .spilling_bytes = spilling};
}

bool logged(const MemoryActions& a, const std::string& text) {
  for (const auto& line : a.warnings)
    if (line.find(text) != std::string::npos) return true;
  return false;
}

TEST(MemoryPolicy, ThresholdsAreFractionsOfTheLimit) {
  MemoryPolicy p(options());
  EXPECT_EQ(p.target_bytes(), 600'000u);
  EXPECT_EQ(p.spill_bytes(), 700'000u);
  EXPECT_EQ(p.pause_bytes(), 800'000u);
  EXPECT_EQ(p.terminate_bytes(), 950'000u);
  EXPECT_EQ(p.spill_goal_bytes(), 600'000u) << "spilling for process memory stops at the target";
  EXPECT_TRUE(p.active());
  EXPECT_FALSE(p.paused());
}

TEST(MemoryPolicy, NoLimitNeverActs) {
  auto o = options();
  o.memory_limit = 0;
  MemoryPolicy p(o);
  EXPECT_FALSE(p.active());
  EXPECT_FALSE(p.pause_bytes().has_value());
  EXPECT_EQ(p.managed_excess(std::uint64_t{1} << 40), 0u);
  for (int i = 0; i < 3; ++i) {
    auto a = p.sample(at(std::uint64_t{1} << 40, 0), t0 + i * 1s);
    EXPECT_FALSE(a.any());
    EXPECT_TRUE(a.warnings.empty());
  }
}

TEST(MemoryPolicy, BelowEveryThresholdDoesNothing) {
  MemoryPolicy p(options());
  auto a = p.sample(at(590'000, 500'000), t0);
  EXPECT_FALSE(a.any());
  EXPECT_EQ(a.spill_until_managed_bytes, 500'000u);
}

TEST(MemoryPolicy, ManagedAboveTargetSpillsTheExcess) {
  MemoryPolicy p(options());
  EXPECT_EQ(p.managed_excess(600'000), 0u) << "at the target is not above it";
  EXPECT_EQ(p.managed_excess(650'000), 50'000u);
  EXPECT_EQ(p.managed_excess(650'000, 30'000), 20'000u) << "what is being spilled is not asked for again";
  auto a = p.sample(at(660'000, 650'000), t0);
  EXPECT_EQ(a.spill_bytes, 50'000u);
  EXPECT_EQ(a.spill_until_managed_bytes, 600'000u);
  EXPECT_FALSE(a.spill_for_process);
  EXPECT_FALSE(a.trim) << "unmanaged memory is small";
}

TEST(MemoryPolicy, ProcessAboveSpillSpillsDownToTheTargetAcrossSamples) {
  auto o = options();
  o.trim_unmanaged_fraction = 2;  // no trims: this test is about spilling alone
  MemoryPolicy p(o);
  // 750000 > spill: the run's goal is the target, 150000 below.
  auto a = p.sample(at(750'000, 700'000), t0);
  EXPECT_EQ(a.spill_bytes, 150'000u);
  EXPECT_TRUE(a.spill_for_process);
  EXPECT_EQ(a.spill_until_managed_bytes, 550'000u);
  // The store spilled only 80000. Under the spill threshold but above the target: the run
  // goes on (hysteresis), for more than the target alone would ask (20000).
  a = p.sample(at(680'000, 620'000), t0 + 100ms);
  EXPECT_EQ(a.spill_bytes, 80'000u);
  EXPECT_TRUE(a.spill_for_process);
  // Under the target: the run is over.
  a = p.sample(at(590'000, 470'000), t0 + 200ms);
  EXPECT_EQ(a.spill_bytes, 0u);
  // Back between target and spill: no new run starts.
  a = p.sample(at(690'000, 560'000), t0 + 300ms);
  EXPECT_EQ(a.spill_bytes, 0u);
  // Above spill again: a new run.
  a = p.sample(at(710'000, 560'000), t0 + 400ms);
  EXPECT_EQ(a.spill_bytes, 110'000u);
}

TEST(MemoryPolicy, ASpillInProgressIsNotAskedForTwice) {
  MemoryPolicy p(options());
  auto a = p.sample(at(750'000, 700'000, 100'000), t0);
  EXPECT_EQ(a.spill_bytes, 50'000u) << "150000 over the goal, 100000 of it already leaving";
  EXPECT_EQ(a.spill_until_managed_bytes, 550'000u);
}

TEST(MemoryPolicy, SpillingNeverAsksForMoreThanIsInMemory) {
  MemoryPolicy p(options());
  auto a = p.sample(at(760'000, 40'000), t0 + 0s);
  // Unmanaged memory is high, so this sample trims first; the next one spills.
  EXPECT_TRUE(a.trim);
  EXPECT_EQ(a.spill_bytes, 0u);
  a = p.sample(at(760'000, 40'000), t0 + 100ms);
  EXPECT_EQ(a.spill_bytes, 40'000u);
  EXPECT_EQ(a.spill_until_managed_bytes, 0u);
}

TEST(MemoryPolicy, WithoutTargetProcessSpillStopsAtTheSpillThreshold) {
  MemoryPolicy p(options({.target = std::nullopt}));
  EXPECT_EQ(p.spill_goal_bytes(), 700'000u);
  EXPECT_EQ(p.managed_excess(900'000), 0u) << "no target: managed bytes alone never spill";
  auto a = p.sample(at(750'000, 720'000), t0);
  EXPECT_EQ(a.spill_bytes, 50'000u);
  a = p.sample(at(690'000, 670'000), t0 + 100ms);
  EXPECT_EQ(a.spill_bytes, 0u) << "under the spill threshold is the end of the run";
}

TEST(MemoryPolicy, WithoutSpillProcessMemoryNeverSpills) {
  MemoryPolicy p(options({.spill = std::nullopt}));
  EXPECT_FALSE(p.spill_goal_bytes().has_value());
  auto a = p.sample(at(790'000, 590'000), t0);
  EXPECT_EQ(a.spill_bytes, 0u);
  a = p.sample(at(790'000, 0), t0 + 1s);
  EXPECT_FALSE(a.unmanaged_warning) << "nothing was asked of spilling";
  a = p.sample(at(790'000, 620'000), t0 + 2s);
  EXPECT_EQ(a.spill_bytes, 20'000u) << "the target still holds";
  EXPECT_FALSE(a.spill_for_process);
}

TEST(MemoryPolicy, PausesAboveAndResumesAtOrBelowThePauseThreshold) {
  MemoryPolicy p(options());
  auto a = p.sample(at(800'000, 700'000), t0);
  EXPECT_EQ(a.pause, PauseChange::none) << "at the threshold is not above it";
  a = p.sample(at(810'000, 700'000), t0 + 100ms);
  EXPECT_EQ(a.pause, PauseChange::pause);
  EXPECT_TRUE(p.paused());
  EXPECT_TRUE(logged(a, "Worker is at 81% memory usage. Pausing worker.")) << a.warnings.at(0);
  a = p.sample(at(850'000, 700'000), t0 + 200ms);
  EXPECT_EQ(a.pause, PauseChange::none) << "already paused";
  EXPECT_TRUE(p.paused());
  a = p.sample(at(800'000, 700'000), t0 + 300ms);
  EXPECT_EQ(a.pause, PauseChange::resume) << "Dask resumes as soon as memory is not above the threshold";
  EXPECT_FALSE(p.paused());
  EXPECT_TRUE(logged(a, "Resuming worker"));
  a = p.sample(at(790'000, 700'000), t0 + 400ms);
  EXPECT_EQ(a.pause, PauseChange::none);
  a = p.sample(at(800'001, 700'000), t0 + 500ms);
  EXPECT_EQ(a.pause, PauseChange::pause);
}

TEST(MemoryPolicy, PausedWorkerTrimsThrottled) {
  MemoryPolicy p(options());
  // Managed memory accounts for nearly all: only being paused asks for the trim.
  EXPECT_TRUE(p.sample(at(850'000, 840'000), t0).trim);
  EXPECT_FALSE(p.sample(at(850'000, 840'000), t0 + 500ms).trim) << "at most once a second";
  EXPECT_TRUE(p.sample(at(850'000, 840'000), t0 + 1s).trim);
}

TEST(MemoryPolicy, WithoutPauseNeverPauses) {
  MemoryPolicy p(options({.pause = std::nullopt}));
  auto a = p.sample(at(900'000, 890'000), t0);
  EXPECT_EQ(a.pause, PauseChange::none);
  EXPECT_FALSE(p.paused());
  EXPECT_TRUE(p.active()) << "spill and terminate still watch process memory";
}

TEST(MemoryPolicy, TerminatesOnceThenKills) {
  MemoryPolicy p(options());
  EXPECT_EQ(p.sample(at(950'000, 900'000), t0).terminate, TerminateAction::none);
  auto a = p.sample(at(950'001, 900'000), t0 + 100ms);
  EXPECT_EQ(a.terminate, TerminateAction::terminate);
  EXPECT_TRUE(logged(a, "exceeded 95% memory budget. Restarting..."));
  EXPECT_EQ(p.sample(at(960'000, 900'000), t0 + 200ms).terminate, TerminateAction::kill);
  // Dropping below does not undo the request: the next time above still kills.
  EXPECT_EQ(p.sample(at(900'000, 890'000), t0 + 300ms).terminate, TerminateAction::none);
  EXPECT_EQ(p.sample(at(970'000, 890'000), t0 + 400ms).terminate, TerminateAction::kill);
  p.process_restarted();
  EXPECT_FALSE(p.paused());
  EXPECT_EQ(p.sample(at(970'000, 890'000), t0 + 500ms).terminate, TerminateAction::terminate);
}

TEST(MemoryPolicy, WithoutTerminateNeverTerminates) {
  MemoryPolicy p(options({.terminate = std::nullopt}));
  EXPECT_EQ(p.sample(at(999'999, 900'000), t0).terminate, TerminateAction::none);
  EXPECT_EQ(p.sample(at(3 * kLimit, 900'000), t0 + 1s).terminate, TerminateAction::none);
}

TEST(MemoryPolicy, EveryThresholdDisabledDoesNothing) {
  MemoryPolicy p(options({.target = std::nullopt, .spill = std::nullopt, .pause = std::nullopt,
                          .terminate = std::nullopt}));
  EXPECT_FALSE(p.active());
  auto a = p.sample(at(2 * kLimit, kLimit), t0);
  EXPECT_FALSE(a.any());
}

TEST(MemoryPolicy, NothingLeftToSpillWarnsAtMostEveryFiveMinutes) {
  auto o = options();
  o.trim_unmanaged_fraction = 2;  // no trims: this test is about the warning alone
  MemoryPolicy p(o);
  auto a = p.sample(at(750'000, 0), t0);
  EXPECT_TRUE(a.unmanaged_warning);
  EXPECT_EQ(a.spill_bytes, 0u);
  EXPECT_TRUE(logged(a, "Unmanaged memory use is high")) << (a.warnings.empty() ? "" : a.warnings[0]);
  EXPECT_TRUE(logged(a, "Unmanaged memory: 732.42 kiB")) << a.warnings.at(0);
  EXPECT_FALSE(p.sample(at(750'000, 0), t0 + 1s).unmanaged_warning);
  EXPECT_FALSE(p.sample(at(750'000, 0), t0 + 299s).unmanaged_warning);
  EXPECT_TRUE(p.sample(at(750'000, 0), t0 + 300s).unmanaged_warning);
  // Values still being spilled are on their way out: no warning yet.
  EXPECT_FALSE(p.sample(at(750'000, 50'000, 50'000), t0 + 900s).unmanaged_warning);
  // Once under the goal the run is over; below the spill threshold none starts, so no
  // warning either.
  EXPECT_FALSE(p.sample(at(590'000, 0), t0 + 1200s).unmanaged_warning);
  EXPECT_FALSE(p.sample(at(690'000, 0), t0 + 1201s).unmanaged_warning);
}

TEST(MemoryPolicy, TrimsWhenUnmanagedMemoryIsHighUnderPressure) {
  MemoryPolicy p(options());
  // Above the lowest threshold (600000), 550000 of it not managed (>= 10% of the limit).
  EXPECT_TRUE(p.sample(at(650'000, 100'000), t0).trim);
  EXPECT_FALSE(p.sample(at(650'000, 100'000), t0 + 999ms).trim);
  EXPECT_TRUE(p.sample(at(650'000, 100'000), t0 + 1s).trim);
  // A trim that took 200 ms: the next waits 200 ms / 5% = 4 s.
  p.trim_took(200ms);
  EXPECT_FALSE(p.sample(at(650'000, 100'000), t0 + 4999ms).trim);
  EXPECT_TRUE(p.sample(at(650'000, 100'000), t0 + 5s).trim);
}

TEST(MemoryPolicy, NoTrimWithoutPressureOrWithLittleUnmanagedMemory) {
  MemoryPolicy p(options());
  EXPECT_FALSE(p.sample(at(590'000, 0), t0).trim) << "under every threshold";
  EXPECT_FALSE(p.sample(at(650'000, 560'000), t0 + 10s).trim) << "90000 unmanaged, under 10% of the limit";
  EXPECT_TRUE(p.sample(at(650'000, 550'000), t0 + 20s).trim) << "100000 unmanaged, 10% of the limit";
}

TEST(MemoryPolicy, TrimComesBeforeSpillingForProcessMemory) {
  MemoryPolicy p(options());
  // 450000 unmanaged: trimming may bring memory under the goal without writing to disk.
  auto a = p.sample(at(750'000, 300'000), t0);
  EXPECT_TRUE(a.trim);
  EXPECT_EQ(a.spill_bytes, 0u);
  // Trimming did not help enough: the next sample spills (no trim within the second).
  a = p.sample(at(740'000, 300'000), t0 + 100ms);
  EXPECT_FALSE(a.trim);
  EXPECT_EQ(a.spill_bytes, 140'000u);
  EXPECT_TRUE(a.spill_for_process);
}

TEST(MemoryPolicy, SpilledEnoughButMemoryStayedUpTrims) {
  auto o = options();
  o.trim_unmanaged_fraction = 2;  // only the spill run's rule asks for a trim here
  MemoryPolicy p(o);
  EXPECT_EQ(p.sample(at(750'000, 700'000), t0).spill_bytes, 150'000u);  // the run needs 150000
  // 150000 spilled, not more than the need: spill on.
  auto a = p.sample(at(745'000, 550'000), t0 + 100ms);
  EXPECT_FALSE(a.trim);
  EXPECT_EQ(a.spill_bytes, 145'000u);
  // Still in progress: not spilled yet, so no trim.
  a = p.sample(at(745'000, 550'000, 145'000), t0 + 200ms);
  EXPECT_FALSE(a.trim);
  EXPECT_EQ(a.spill_bytes, 0u);
  // 295000 spilled, more than needed, and memory is still above the goal: Dask's gc.collect().
  a = p.sample(at(744'000, 405'000), t0 + 300ms);
  EXPECT_TRUE(a.trim);
  EXPECT_EQ(a.spill_bytes, 0u) << "the spill waits for the sample after the trim";
  a = p.sample(at(744'000, 405'000), t0 + 400ms);
  EXPECT_FALSE(a.trim);
  EXPECT_EQ(a.spill_bytes, 144'000u);
}

TEST(MemoryPolicy, MaxSpillCapsWhatIsSpilled) {
  auto o = options();
  o.max_spill_bytes = 100'000;
  MemoryPolicy p(o);
  auto s = at(750'000, 700'000);
  s.spilled_bytes = 80'000;
  auto a = p.sample(s, t0);
  EXPECT_EQ(a.spill_bytes, 20'000u);
  EXPECT_TRUE(a.spill_capped);
  s.spilled_bytes = 100'000;
  a = p.sample(s, t0 + 100ms);
  EXPECT_EQ(a.spill_bytes, 0u);
  EXPECT_TRUE(a.spill_capped);
  EXPECT_FALSE(a.unmanaged_warning) << "a full spill file is not unmanaged memory";
}

TEST(MemoryPolicy, RefusesFractionsOutsideZeroToOne) {
  for (double bad : {0.0, -0.1, 1.5, std::nan("")}) {
    EXPECT_THROW(MemoryPolicy(options({.pause = bad})), std::invalid_argument) << bad;
    EXPECT_THROW(MemoryPolicy(options({.target = bad})), std::invalid_argument) << bad;
  }
  EXPECT_NO_THROW(MemoryPolicy(options({.terminate = 1.0})));
}

}  // namespace
}  // namespace distrib::detail::wrk
