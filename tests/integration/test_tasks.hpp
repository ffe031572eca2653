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
/// Aborts the worker process running it.
int crash_worker(int x);
