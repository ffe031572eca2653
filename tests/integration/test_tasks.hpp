#pragma once
// Task functions compiled into libdistrib_test_tasks.so, which a plain dworker loads with
// --preload. The integration tests link it too, so that the client can name them.
#include <string>
#include <vector>

int triple(int x);
std::string shout(std::string s);
/// getenv(name) in the worker, or "<unset>".
std::string env_value(std::string name);
/// The worker's process id.
int process_id(int);
/// Makes the worker ignore SIGTERM (tests of the nanny's SIGKILL after --close-timeout).
int ignore_sigterm(int);

#include <stop_token>

// For the worker lifecycle tests. Each prints "started <name>" on stdout when it begins, so
// that a test reading a dworker's output knows the task runs.
// Waits until the worker asks it to stop (or max_ms passes); returns the milliseconds it ran.
int wait_for_stop(int max_ms, std::stop_token stop);
// The same, polling distrib::cancelled() instead of taking a token.
int poll_cancelled(int max_ms);
// Sleeps ms, ignoring any request to stop.
int stubborn_sleep_ms(int ms);

/// Aborts the worker process running it.
int crash_worker(int x);
// Sleeps `ms` milliseconds, then returns 3 * x.
int slow_triple(int x, int ms);
int add_ints(int a, int b);
// (a + b) mod 1000003: long chains of sums stay in range.
int mod_add_ints(int a, int b);
// Returns 1 once `path` exists (a gate the test opens when it is ready), 0 after max_ms or
// when asked to stop.
int wait_for_file(std::string path, int max_ms);

// For client_ops_test.cpp.
#include <cstdint>
// Sleeps ms, then writes `path` (a side effect a test observes without a client).
int write_file_after(std::string path, int ms);
// Raises the first time (and creates `marker`), returns 1 once `marker` exists.
int fail_once(std::string marker);
// Raises if `fail`, else returns 7.
int fail_if(bool fail);
// n bytes of 7: a result too large to come with the scheduler's notice.
std::vector<std::uint8_t> filled_bytes(int n);
