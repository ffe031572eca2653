#include "cluster/adaptive.hpp"

#include <algorithm>

namespace distrib::detail {

AdaptiveDecision AdaptivePolicy::decide(const AdaptiveInput& in) {
  AdaptiveDecision d;
  const int current = static_cast<int>(in.workers.size());
  const int per_worker = std::max(1, in.threads_per_worker);
  const int wanted = static_cast<int>((in.runnable_tasks + static_cast<std::size_t>(per_worker) - 1) /
                                      static_cast<std::size_t>(per_worker));
  const int target = std::clamp(wanted, in.minimum, std::max(in.minimum, in.maximum));

  std::map<std::string, int> idle;
  for (const auto& w : in.workers)
    if (w.processing == 0) idle[w.name] = idle_checks_.count(w.name) ? idle_checks_[w.name] + 1 : 1;
  idle_checks_ = std::move(idle);  // a worker that worked, or left, starts again from zero

  if (target > current) {
    d.scale_to = target;
    return d;
  }
  if (target < current) {
    // The idle ones that waited long enough, those holding least first (least to move).
    std::vector<const AdaptiveInput::Worker*> candidates;
    for (const auto& w : in.workers)
      if (auto it = idle_checks_.find(w.name); it != idle_checks_.end() && it->second >= in.wait_count)
        candidates.push_back(&w);
    std::sort(candidates.begin(), candidates.end(),
              [](auto* a, auto* b) { return a->stored_bytes != b->stored_bytes ? a->stored_bytes < b->stored_bytes : a->name < b->name; });
    const auto n = std::min<std::size_t>(candidates.size(), static_cast<std::size_t>(current - target));
    for (std::size_t i = 0; i < n; ++i) {
      d.retire.push_back(candidates[i]->name);
      idle_checks_.erase(candidates[i]->name);
    }
  }
  return d;
}

}  // namespace distrib::detail
