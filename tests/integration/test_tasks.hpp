#pragma once
// Task functions compiled into libdistrib_test_tasks.so, which a plain dworker loads with
// --preload. The integration tests link it too, so that the client can name them.
#include <string>
#include <vector>

int triple(int x);
std::string shout(std::string s);
// Sleeps `ms` milliseconds, then returns 3 * x.
int slow_triple(int x, int ms);
