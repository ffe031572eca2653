#pragma once
// Task functions defined in the integration test program itself: LocalCluster's workers
// re-run this program, so they know them without any preload.
#include <string>
#include <vector>

int inc(int x);
double add(double a, double b);
int fail_with(std::string message);
int sleep_ms(int ms);
std::vector<double> make_vector(int n);
double sum_vector(std::vector<double> v);
