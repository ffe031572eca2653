#pragma once
// progress(futures): a live progress bar per task prefix until every future is done, as
// dask.distributed.progress. On a terminal the bars redraw in place; elsewhere (a log, a
// pipe) a plain line is printed per prefix every 10% and at the end.
//
//   auto fs = client.map(inc, xs);
//   distrib::progress(fs);
#include <iostream>
#include <vector>

#include "distrib/future.hpp"

namespace distrib {

struct ProgressOptions {
  std::ostream* out = &std::cerr;
  /// Redraw bars in place; by default only when `out` is std::cerr or std::cout on a terminal.
  enum class Mode { automatic, bars, lines } mode = Mode::automatic;
  int width = 40;
};

namespace detail {
void progress(const std::vector<FutureHandle>& futures, const ProgressOptions& options);
}

template <class T>
void progress(const std::vector<Future<T>>& futures, const ProgressOptions& options = {}) {
  std::vector<detail::FutureHandle> handles;
  handles.reserve(futures.size());
  for (const auto& f : futures) handles.push_back(f.handle());
  detail::progress(handles, options);
}

}  // namespace distrib
