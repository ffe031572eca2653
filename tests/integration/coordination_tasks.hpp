#pragma once
// Tasks that use the coordination primitives (compiled into libdistrib_test_tasks.so). Each
// makes its own Client of the scheduler at `address`.
#include <string>

/// Puts x * x into the Queue<int> "results"; returns x.
int feed_queue(std::string address, int x);
/// Under the Lock "counter-lock", reads the Variable<int> "counter" and sets it one higher;
/// returns the value it read.
int locked_increment(std::string address, int i);
/// Takes the lease of the Semaphore "db" (max_leases 1), sets the Event "holding", then waits
/// on an Event nobody sets: it holds the lease until its worker dies.
int hold_semaphore(std::string address);
/// Sets the Event `name`.
int set_event(std::string address, std::string name);
/// Logs `message` to `topic`.
int log_to_topic(std::string address, std::string topic, std::string message);

// The same with the worker's shared client (distrib::get_client()), as a task would.
/// Puts x * x into the Queue<int> "shared-results"; returns x.
int feed_shared_queue(int x);
/// locked_increment on "shared-counter" under "shared-counter-lock".
int shared_locked_increment(int i);
/// hold_semaphore on the Semaphore "shared-db", setting the Event "shared-holding".
int hold_shared_semaphore(int);
