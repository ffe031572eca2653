#include "coordination_tasks.hpp"

#include <distrib/distrib.hpp>

int feed_queue(std::string address, int x) {
  distrib::Client client(address);
  distrib::Queue<int>("results", client).put(x * x);
  return x;
}
DISTRIB_TASK(feed_queue);

int locked_increment(std::string address, int) {
  distrib::Client client(address);
  distrib::Lock lock("counter-lock", client);
  std::lock_guard guard(lock);
  distrib::Variable<int> counter("counter", client);
  const int n = counter.get(std::chrono::seconds(30));
  counter.set(n + 1);
  return n;
}
DISTRIB_TASK(locked_increment);

int hold_semaphore(std::string address) {
  distrib::Client client(address);
  distrib::Semaphore db("db", client, 1);
  if (!db.acquire(std::chrono::seconds(60))) return 0;
  distrib::Event("holding", client).set();
  distrib::Event("never-set", client).wait();  // blocks on the scheduler until the worker is killed
  return 1;
}
DISTRIB_TASK(hold_semaphore);

int set_event(std::string address, std::string name) {
  distrib::Client client(address);
  distrib::Event(name, client).set();
  return 1;
}
DISTRIB_TASK(set_event);

int log_to_topic(std::string address, std::string topic, std::string message) {
  distrib::Client client(address);
  client.log_event(topic, message);
  return 1;
}
DISTRIB_TASK(log_to_topic);

int feed_shared_queue(int x) {
  distrib::Queue<int>("shared-results").put(x * x);
  return x;
}
DISTRIB_TASK(feed_shared_queue);

int shared_locked_increment(int) {
  distrib::Lock lock("shared-counter-lock");
  std::lock_guard guard(lock);
  distrib::Variable<int> counter("shared-counter");
  const int n = counter.get(std::chrono::seconds(30));
  counter.set(n + 1);
  return n;
}
DISTRIB_TASK(shared_locked_increment);

int hold_shared_semaphore(int) {
  distrib::Semaphore db("shared-db", 1);
  if (!db.acquire(std::chrono::seconds(60))) return 0;
  distrib::Event("shared-holding").set();
  distrib::Event("shared-never-set").wait();  // blocks on the scheduler until the worker is killed
  return 1;
}
DISTRIB_TASK(hold_shared_semaphore);
