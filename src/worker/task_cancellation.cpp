// The stop token of the task running on this thread, for distrib::cancelled() and for task
// functions that take a std::stop_token (see distrib/task.hpp).
#include <stop_token>
#include <utility>

#include "distrib/task.hpp"

namespace distrib {

namespace {
thread_local std::stop_token t_current_task_token;  // default: never stops
}  // namespace

bool cancelled() noexcept { return t_current_task_token.stop_requested(); }

namespace detail {

std::stop_token current_stop_token() noexcept { return t_current_task_token; }

TaskStopScope::TaskStopScope(std::stop_token token) noexcept
    : previous_(std::exchange(t_current_task_token, std::move(token))) {}

TaskStopScope::~TaskStopScope() { t_current_task_token = std::move(previous_); }

}  // namespace detail
}  // namespace distrib
