// Unit tests of the worker's wire adapter: scheduler messages become WorkerState events (or
// connection messages), the state's reports become protocol messages. No sockets: messages
// go from builder to reader in memory.
#include <gtest/gtest.h>

#include <stdexcept>

#include "worker/worker_wire.hpp"

namespace distrib::detail::wire {
namespace {

InMessage as_received(OutMessage m) { return InMessage{std::move(m.header), std::move(m.frames)}; }

SchedulerMessage read(OutMessage m) {
  auto in = as_received(std::move(m));
  MessageReader mr(in);
  return read_scheduler_message(mr);
}

TEST(WorkerWire, ComputeTasksBecomeOneEventEachWithTheirRunIdAndWhoHas) {
  MessageBuilder mb;
  auto list = mb.root().initComputeTasks(2);
  for (unsigned i = 0; i < 2; ++i) {
    TaskSpec spec;
    spec.key = "k" + std::to_string(i);
    spec.function = "inc";
    spec.args.emplace_back();
    spec.args.back().v = std::string("dep");
    write_task_spec(mb, list[i].initSpec(), spec);
    auto wh = list[i].initWhoHas(1);
    wh[0].setKey("dep");
    wh[0].initWorkers(1).set(0, "tcp://peer:1");
    list[i].setRunId(40 + i);
  }
  auto msg = read(mb.finish());
  auto* work = std::get_if<StateEvents>(&msg);
  ASSERT_NE(work, nullptr);
  ASSERT_EQ(work->events.size(), 2u);
  for (unsigned i = 0; i < 2; ++i) {
    auto* ct = std::get_if<wrk::ComputeTask>(&work->events[i]);
    ASSERT_NE(ct, nullptr);
    EXPECT_EQ(ct->spec->key, "k" + std::to_string(i));
    EXPECT_EQ(ct->run_id, 40u + i);
    ASSERT_EQ(ct->who_has.size(), 1u);
    EXPECT_EQ(ct->who_has[0].first, "dep");
    EXPECT_EQ(ct->who_has[0].second, std::vector<std::string>{"tcp://peer:1"});
  }
}

TEST(WorkerWire, FreeKeysStealAndLocationsBecomeEvents) {
  MessageBuilder fk;
  auto keys = fk.root().initFreeKeys(2);
  keys.set(0, "a");
  keys.set(1, "b");
  auto m1 = read(fk.finish());
  auto* free = std::get_if<wrk::FreeKeys>(&std::get<StateEvents>(m1).events.at(0));
  ASSERT_NE(free, nullptr);
  EXPECT_EQ(free->keys, (std::vector<std::string>{"a", "b"}));

  MessageBuilder st;
  st.root().setStealRequest("s");
  auto m2 = read(st.finish());
  EXPECT_EQ(std::get<wrk::StealRequest>(std::get<StateEvents>(m2).events.at(0)).key, "s");

  MessageBuilder kl;
  auto loc = kl.root().initKeyLocations();
  loc.setKey("d");
  loc.initWorkers(1).set(0, "tcp://x:2");
  auto m3 = read(kl.finish());
  auto ev = std::get<wrk::KeyLocations>(std::get<StateEvents>(m3).events.at(0));
  EXPECT_EQ(ev.key, "d");
  EXPECT_EQ(ev.addresses, std::vector<std::string>{"tcp://x:2"});
}

TEST(WorkerWire, ConnectionMessagesAreToldApart) {
  MessageBuilder rr;
  rr.root().setReregister("silent for 300 s");
  auto m1 = read(rr.finish());
  ASSERT_TRUE(std::holds_alternative<Reregister>(m1));
  EXPECT_EQ(std::get<Reregister>(m1).reason, "silent for 300 s");

  MessageBuilder ok;
  ok.root().initWorkerRegistered().setOk(true);
  EXPECT_TRUE(std::get<Registered>(read(ok.finish())).ok);
  EXPECT_TRUE(std::holds_alternative<Shutdown>(read(make_shutdown())));
  auto m2 = read(make_error("go away"));
  EXPECT_EQ(std::get<SchedulerError>(m2).reason, "go away");
}

TEST(WorkerWire, AMessageASchedulerDoesNotSendAWorkerThrows) {
  MessageBuilder mb;
  mb.root().initGetData().setId(1);
  EXPECT_THROW(read(mb.finish()), std::runtime_error);
}

TEST(WorkerWire, RegistrationCarriesTheHeldKeys) {
  Registration r{"w", "tcp://127.0.0.1:5", 3, 1000, {"inc", "triple"}, {{"GPU", 2}}, {{"k", "i32", 4}, {"v", "str", 9}}};
  auto in = as_received(make_register_worker(r));
  MessageReader mr(in);
  ASSERT_TRUE(mr.root().isRegisterWorker());
  auto reg = mr.root().getRegisterWorker();
  EXPECT_EQ(std::string(reg.getName()), "w");
  EXPECT_EQ(std::string(reg.getAddress()), "tcp://127.0.0.1:5");
  EXPECT_EQ(reg.getNthreads(), 3u);
  EXPECT_EQ(reg.getMemoryLimit(), 1000u);
  ASSERT_EQ(reg.getFunctions().size(), 2u);
  EXPECT_EQ(std::string(reg.getFunctions()[1]), "triple");
  ASSERT_EQ(reg.getResources().size(), 1u);
  EXPECT_EQ(reg.getResources()[0].getAmount(), 2.0);
  ASSERT_EQ(reg.getHeld().size(), 2u);
  EXPECT_EQ(std::string(reg.getHeld()[1].getKey()), "v");
  EXPECT_EQ(std::string(reg.getHeld()[1].getType()), "str");
  EXPECT_EQ(reg.getHeld()[1].getNbytes(), 9u);
}

TEST(WorkerWire, ReportsCarryTheirRunIds) {
  wrk::SendTaskFinished small{"a", "i32", 4, 0.5, encode_value(std::int32_t{7}), 11};
  wrk::SendTaskFinished large{"b", "i32", 2000, 0.1, std::nullopt, 12};
  auto in = as_received(make_tasks_finished({small, large}));
  MessageReader mr(in);
  auto fin = mr.root().getTasksFinished();
  ASSERT_EQ(fin.size(), 2u);
  EXPECT_EQ(fin[0].getRunId(), 11u);
  EXPECT_TRUE(fin[0].hasValue());
  EXPECT_EQ(decode_value<std::int32_t>(mr.value(fin[0].getValue())), 7);
  EXPECT_EQ(fin[1].getRunId(), 12u);
  EXPECT_FALSE(fin[1].hasValue());

  auto erred = as_received(make_task_erred({{"c", "E", "boom", 13}}));
  MessageReader er(erred);
  EXPECT_EQ(er.root().getTaskErred()[0].getRunId(), 13u);
  EXPECT_EQ(std::string(er.root().getTaskErred()[0].getMessage()), "boom");

  auto steal = as_received(make_steal_response({"d", true, 14}));
  MessageReader sr(steal);
  EXPECT_TRUE(sr.root().getStealResponse().getReleased());
  EXPECT_EQ(sr.root().getStealResponse().getRunId(), 14u);

  auto missing = as_received(make_missing_data({"e", "tcp://p:1"}));
  MessageReader md(missing);
  EXPECT_EQ(std::string(md.root().getMissingData().getWorker()), "tcp://p:1");
}

}  // namespace
}  // namespace distrib::detail::wire
