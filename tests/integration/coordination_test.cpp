// Coordination primitives, datasets and topics against real daemons: tasks (each with a
// Client of its own) and clients share queues, variables, locks, semaphores and events held
// by the scheduler; misuse is a clear error at the call.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <condition_variable>
#include <distrib/distrib.hpp>
#include <mutex>
#include <thread>

#include "comm/framing.hpp"
#include "comm/message.hpp"
#include "coordination_tasks.hpp"
#include "helpers.hpp"
#include "tcp_proxy.hpp"
#include "test_tasks.hpp"

namespace distrib::test {
namespace {

struct Coordination : ::testing::Test {
  void start(const std::vector<std::string>& scheduler_args = {}, const std::vector<std::string>& worker_args = {},
             int workers = 1) {
    scheduler = start_scheduler(scheduler_args);
    std::vector<std::string> args{"--preload", TEST_TASKS_PATH};
    args.insert(args.end(), worker_args.begin(), worker_args.end());
    for (int i = 0; i < workers; ++i) this->workers.push_back(start_worker(scheduler.address, args));
  }
  Daemon scheduler;
  std::vector<Daemon> workers;
  SubmitOptions impure{.pure = false};
};

template <class E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "<no error>";
}

TEST_F(Coordination, QueueFedByTasksIsDrainedByTheClient) {
  start({}, {"--nthreads", "2"});
  Client client(scheduler.address);
  std::vector<Future<int>> fs;
  for (int i = 1; i <= 10; ++i) fs.push_back(client.submit(feed_queue, scheduler.address, i));
  Queue<int> results("results", client);
  std::vector<int> got;
  for (int i = 0; i < 10; ++i) got.push_back(results.get(60s));
  std::sort(got.begin(), got.end());
  std::vector<int> squares;
  for (int i = 1; i <= 10; ++i) squares.push_back(i * i);
  EXPECT_EQ(got, squares);
  EXPECT_EQ(results.qsize(), 0u);
  for (auto& f : fs) EXPECT_GT(f.result(60s), 0);
}

TEST_F(Coordination, LockSerializesIncrementsOfAVariableFromTwentyTasks) {
  start({}, {"--nthreads", "3"}, 2);
  Client client(scheduler.address);
  client.wait_for_workers(2, 30s);
  Variable<int> counter("counter", client);
  counter.set(0);
  std::vector<int> ids(20);
  for (int i = 0; i < 20; ++i) ids[i] = i;
  std::vector<Future<int>> fs;
  for (int i : ids) fs.push_back(client.submit(locked_increment, scheduler.address, i));
  auto seen = client.gather(fs);
  EXPECT_EQ(counter.get(), 20);
  // Every task read a different value: none overlapped another under the lock.
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, ids);
  Lock lock("counter-lock", client);
  EXPECT_FALSE(lock.locked());
}

TEST_F(Coordination, SemaphoreLeaseOfAKilledWorkersTaskIsReleased) {
  // A short grace: the killed worker's task client is removed 0.5 s after its connection drops.
  start({"--client-grace", "0.5"}, {"--no-nanny"});
  Client client(scheduler.address);
  auto held = client.submit(impure, hold_semaphore, scheduler.address);
  ASSERT_TRUE(Event("holding", client).wait(60s));
  Client other(scheduler.address);
  Semaphore db("db", other, 1);
  EXPECT_EQ(db.get_value(), 1u);
  EXPECT_FALSE(db.acquire(0ms));  // the task holds it
  workers.front().process.signal(SIGKILL);
  EXPECT_TRUE(db.acquire(60s));  // answered once the task's client is gone: no polling, no sleep
  EXPECT_EQ(db.get_value(), 1u);
  db.release();
  EXPECT_EQ(db.get_value(), 0u);
}

// Tasks that leave the client out use their worker's shared client (get_client()). It sends
// no client id, so when its worker is killed the scheduler drops it, and its leases, at once:
// no short --client-grace is needed (the default is 60 s, longer than the wait below).
TEST_F(Coordination, TasksWithTheWorkersSharedClientCoordinateAndLoseTheirLeaseWithTheirWorker) {
  start({}, {"--nthreads", "3", "--no-nanny"}, 2);
  Client client(scheduler.address);
  client.wait_for_workers(2, 30s);
  Variable<int> counter("shared-counter", client);
  counter.set(0);
  std::vector<int> ids(20);
  for (int i = 0; i < 20; ++i) ids[i] = i;
  std::vector<Future<int>> fs;
  for (int i : ids) fs.push_back(client.submit(impure, shared_locked_increment, i));
  auto seen = client.gather(fs);
  EXPECT_EQ(counter.get(), 20);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, ids);
  for (int i = 1; i <= 4; ++i) fs.push_back(client.submit(impure, feed_shared_queue, i));
  Queue<int> results("shared-results", client);
  std::vector<int> got;
  for (int i = 0; i < 4; ++i) got.push_back(results.get(60s));
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<int>{1, 4, 9, 16}));

  SubmitOptions on_first = impure;
  on_first.workers = {workers.front().address};
  auto held = client.submit(on_first, hold_shared_semaphore, 0);
  ASSERT_TRUE(Event("shared-holding", client).wait(60s));
  Semaphore db("shared-db", client, 1);
  EXPECT_FALSE(db.acquire(0ms));  // the task holds it
  workers.front().process.signal(SIGKILL);
  EXPECT_TRUE(db.acquire(30s)) << "the lease outlived its worker";
  db.release();
}

TEST_F(Coordination, EventSetByATaskReleasesAWaitingClient) {
  start();
  Client client(scheduler.address);
  Event go("go", client);
  EXPECT_FALSE(go.is_set());
  auto f = client.submit(impure, set_event, scheduler.address, std::string("go"));
  EXPECT_TRUE(go.wait(60s));
  EXPECT_TRUE(go.is_set());
  go.clear();
  EXPECT_FALSE(go.wait(50ms));
  EXPECT_EQ(f.result(60s), 1);
}

TEST_F(Coordination, DatasetsPublishedByOneClientAreReadByAnother) {
  start();
  Client other(scheduler.address);
  {
    Client publisher(scheduler.address);
    auto f = publisher.submit(triple, 14);
    ASSERT_EQ(f.result(60s), 42);
    publisher.publish_dataset("answer", f);
    EXPECT_NE(error_of<KeyError>([&] { publisher.publish_dataset("answer", f); }).find("already exists"),
              std::string::npos);
  }  // the publisher and its future are gone: the scheduler keeps the key
  EXPECT_EQ(other.list_datasets(), std::vector<std::string>{"answer"});
  auto got = other.get_dataset<int>("answer");
  EXPECT_EQ(got.result(60s), 42);
  auto wrong = error_of<DecodeError>([&] { other.get_dataset<std::string>("answer"); });
  EXPECT_NE(wrong.find("'i32'"), std::string::npos) << wrong;
  EXPECT_NE(wrong.find("'string'"), std::string::npos) << wrong;
  EXPECT_NE(error_of<KeyError>([&] { other.get_dataset<int>("missing"); }).find("missing"), std::string::npos);
  other.unpublish_dataset("answer");
  EXPECT_TRUE(other.list_datasets().empty());
  EXPECT_NE(error_of<KeyError>([&] { other.unpublish_dataset("answer"); }), "<no error>");
  EXPECT_EQ(got.result(60s), 42);  // its own future still holds the key
  Client third(scheduler.address);
  EXPECT_NE(error_of<KeyError>([&] { third.get_dataset<int>("answer"); }), "<no error>");
}

TEST_F(Coordination, TopicEventsReachSubscribersOffTheIoThread) {
  start();
  Client subscriber(scheduler.address);
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::string> messages;
  std::string thread_name;
  subscriber.subscribe_topic<std::string>("news", [&](const TopicEvent<std::string>& e) {
    char name[32] = {};
    pthread_getname_np(pthread_self(), name, sizeof name);
    std::lock_guard lock(mutex);
    thread_name = name;
    messages.push_back(e.message);
    cv.notify_all();
  });
  Client logger(scheduler.address);
  logger.log_event("news", "from the client");
  EXPECT_EQ(logger.submit(impure, log_to_topic, scheduler.address, std::string("news"), std::string("from a task"))
                .result(60s),
            1);
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, 60s, [&] { return messages.size() >= 2; }));
    EXPECT_EQ(messages, (std::vector<std::string>{"from the client", "from a task"}));
    EXPECT_EQ(thread_name, "distrib-topics");
  }
  auto events = logger.get_events<std::string>("news");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].message, "from a task");
  EXPECT_GT(events[1].time, 1.6e9);
  EXPECT_NE(error_of<DecodeError>([&] { logger.get_events<int>("news"); }).find("string"), std::string::npos);
  subscriber.unsubscribe_topic("news");
  logger.log_event("news", "unheard");
  EXPECT_EQ(logger.get_events<std::string>("news").size(), 3u);
  std::lock_guard lock(mutex);
  EXPECT_EQ(messages.size(), 2u);  // get_events above ran after the log: nothing was on its way
}

TEST_F(Coordination, MisuseIsAClearErrorAtTheCall) {
  start();
  Client client(scheduler.address);
  Variable<int>("v", client).set(5);
  auto wrong_variable = error_of<DecodeError>([&] { Variable<std::string>("v", client).get(); });
  EXPECT_NE(wrong_variable.find("'i32'"), std::string::npos) << wrong_variable;
  EXPECT_NE(wrong_variable.find("'string'"), std::string::npos) << wrong_variable;

  Queue<int>("q", client).put(1);
  auto wrong_queue = error_of<DecodeError>([&] { Queue<double>("q", client).get(1s); });
  EXPECT_NE(wrong_queue.find("'i32'"), std::string::npos) << wrong_queue;
  EXPECT_NE(wrong_queue.find("'f64'"), std::string::npos) << wrong_queue;
  EXPECT_EQ(Queue<int>("q", client).get(1s), 1);  // the item stayed

  Lock lock("l", client);
  EXPECT_NE(error_of<NotHeldError>([&] { lock.release(); }), "<no error>");
  Semaphore sem("s", client, 2);
  ASSERT_TRUE(sem.acquire());
  sem.release();
  EXPECT_NE(error_of<NotHeldError>([&] { sem.release(); }).find("more often"), std::string::npos);
  ASSERT_TRUE(sem.acquire());
  Semaphore other_size("s", client, 3);
  EXPECT_NE(error_of<std::invalid_argument>([&] { other_size.acquire(0ms); }).find("max_leases 2"), std::string::npos);
  sem.release();

  EXPECT_NE(error_of<TimeoutError>([&] { Queue<int>("empty", client).get(100ms); }).find("timed out"),
            std::string::npos);
  EXPECT_NE(error_of<TimeoutError>([&] { Variable<int>("unset", client).get(100ms); }), "<no error>");
  EXPECT_FALSE(Event("unset", client).wait(100ms));
  EXPECT_NE(error_of<std::invalid_argument>([&] { Queue<int>("q", client).get(-1ms); }), "<no error>");
  EXPECT_NE(error_of<std::invalid_argument>([&] { Queue<int>("", client); }), "<no error>");

  Client holder(scheduler.address);
  Lock held("held", holder);
  ASSERT_TRUE(held.acquire());
  Lock mine("held", client);
  EXPECT_FALSE(mine.try_lock());
  EXPECT_FALSE(mine.acquire(100ms));
  {
    std::unique_lock later(mine, std::defer_lock);
    std::thread releaser([&] { held.release(); });
    EXPECT_TRUE(later.try_lock_for(60s));
    releaser.join();
  }
  EXPECT_FALSE(mine.locked());
  Queue<int> bounded("bounded", client, {.maxsize = 1});
  bounded.put(1);
  EXPECT_NE(error_of<TimeoutError>([&] { bounded.put(2, 100ms); }).find("put"), std::string::npos);
  EXPECT_EQ(bounded.qsize(), 1u);
}

TEST_F(Coordination, BlockingGetSurvivesADroppedConnection) {
  start();
  TcpProxy proxy(scheduler.address);
  Client client(proxy.address());
  Client feeder(scheduler.address);
  int got = 0;
  std::thread getter([&] { got = Queue<int>("later", client).get(60s); });
  // The get waits on the scheduler; the connection is cut under it; the client comes back
  // on a new one and asks again; the value put afterwards reaches it once.
  ASSERT_TRUE(eventually([&] { return proxy.forwarded() >= 1; }));
  proxy.cut();
  ASSERT_TRUE(eventually([&] { return proxy.forwarded() >= 2; }));
  Queue<int>("later", feeder).put(7);
  getter.join();
  EXPECT_EQ(got, 7);
  EXPECT_EQ(Queue<int>("later", feeder).qsize(), 0u);
}

// A client's handshake, then `m`, framed as on the wire.
std::string framed_after_handshake(detail::OutMessage m) {
  std::vector<detail::OutMessage> msgs;
  msgs.push_back(detail::make_handshake(proto::Role::CLIENT, "stranger"));
  msgs.push_back(std::move(m));
  std::vector<std::byte> staging;
  std::vector<std::span<const std::byte>> parts;
  detail::plan_write(msgs, staging, parts);
  std::string out;
  for (auto p : parts) out.append(reinterpret_cast<const char*>(p.data()), p.size());
  return out;
}

TEST_F(Coordination, MalformedCoordinationMessagesCloseOnlyTheirConnection) {
  start();
  {
    detail::MessageBuilder mb;  // a reply, which only the scheduler sends
    mb.root().initCoordination().initReply().setDone();
    EXPECT_TRUE(raw_exchange(scheduler.address, framed_after_handshake(mb.finish()), 30s).closed);
  }
  {
    detail::MessageBuilder mb;  // a call whose value names a frame that is not there
    auto call = mb.root().initCoordination().initCall();
    call.setOp(proto::CoordinationOp::QUEUE_PUT);
    call.setName("q");
    call.initValue().setFrame(7);
    EXPECT_TRUE(raw_exchange(scheduler.address, framed_after_handshake(mb.finish()), 30s).closed);
  }
  Client client(scheduler.address);  // the scheduler carries on
  Queue<int> q("q", client);
  q.put(3);
  EXPECT_EQ(q.get(30s), 3);
}

}  // namespace
}  // namespace distrib::test
