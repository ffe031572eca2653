#pragma once
// Tasks that launch tasks (distrib::get_client, secede, rejoin, WorkerClient), compiled
// into libdistrib_test_tasks.so.
#include <string>
#include <vector>

/// Fibonacci where every call is a task; `pure`: calls with equal arguments share a key
/// (and so a task), as Dask's default.
long fib(int n, bool pure);
/// The name, nthreads and scheduler address of the worker running it, joined by '|'.
std::string who_runs_me(int);
/// Submits triple(0..n-1) from inside the task, waits without its thread, returns the sum.
long sum_of_triples(int n);
/// Calls secede, secede, rejoin, rejoin (the second of each does nothing); returns 1.
int secede_twice(int);
