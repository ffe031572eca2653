// SpillingStore: the LRU, the accounting and the spill thread (the design is in
// spilling_store.hpp, the file format in spill_file.hpp).
#include "worker/spilling_store.hpp"

#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "core/log.hpp"
#include "core/memory_limit.hpp"
#include "worker/spill_directory.hpp"
#include "worker/spill_file.hpp"

namespace distrib::detail::wrk {

struct SpillingStore::Impl {
  // A value being written. `cancelled` (under the mutex): its key was erased or replaced
  // meanwhile, and the file is removed as soon as it is written.
  struct WriteJob {
    std::string key;
    std::uint64_t file_id = 0;
    Value value;
    bool cancelled = false;
  };
  // One stored key. In memory (`in_memory`, `bytes`), on disk (`file`), or both: a value
  // being written, or one read back. Entries in memory that may be spilled are linked in
  // the LRU list, the coldest first.
  struct Entry {
    std::string key;  // KeyedTable finds items by their own `key`
    std::string type;
    std::uint64_t nbytes = 0;
    Bytes bytes;
    bool in_memory = true;
    bool drop_when_written = false;  // chosen for spilling and not used since
    std::shared_ptr<WriteJob> job;
    std::uint64_t file_id = 0;
    std::optional<SpillFileInfo> file;
    Entry* colder = nullptr;
    Entry* hotter = nullptr;
    bool in_lru = false;
  };
  // Work for the spill thread: a write, or the removal of file `unlink_id`.
  struct Job {
    std::shared_ptr<WriteJob> write;
    std::uint64_t unlink_id = 0;
  };
  // Buffers let go of while the mutex is held are released after it is unlocked (a large
  // one may be unmapped): declared before the lock, destroyed after it.
  using Garbage = std::vector<Bytes>;

  explicit Impl(SpillOptions o)
      : dir(o.local_directory), options(std::move(o)), target(options.target_bytes) {
    options.compress = options.compress && spill_compression_available();
    thread = std::thread([this] { run(); });
  }
  ~Impl() {
    {
      std::lock_guard lock(mutex);
      stop = true;
    }
    work_cv.notify_all();
    thread.join();
  }

  // ---- the LRU list ------------------------------------------------------------------
  void lru_remove(Entry* e) {
    if (!e->in_lru) return;
    (e->colder ? e->colder->hotter : coldest) = e->hotter;
    (e->hotter ? e->hotter->colder : hottest) = e->colder;
    e->colder = e->hotter = nullptr;
    e->in_lru = false;
  }
  void lru_push_hot(Entry* e) {
    lru_remove(e);
    e->colder = hottest;
    (hottest ? hottest->hotter : coldest) = e;
    hottest = e;
    e->in_lru = true;
  }
  void lru_push_cold(Entry* e) {
    lru_remove(e);
    e->hotter = coldest;
    (coldest ? coldest->colder : hottest) = e;
    coldest = e;
    e->in_lru = true;
  }

  // ---- choosing values to spill (mutex held) ---------------------------------------------
  void release(Entry* e, Garbage& garbage) {
    garbage.push_back(std::move(e->bytes));
    e->bytes = Bytes();
    e->in_memory = false;
    memory -= e->nbytes;
    spilled += e->nbytes;
    ++counts.values_dropped;
  }
  // Spills `e` (in memory): dropped now if its file already holds it, else written first.
  // The bytes that will leave memory.
  std::uint64_t choose(Entry* e, Garbage& garbage) {
    lru_remove(e);
    if (e->file) {
      release(e, garbage);
      return e->nbytes;
    }
    e->drop_when_written = true;
    pending += e->nbytes;
    if (!e->job) {  // else written already, and it was used since being chosen
      e->file_id = next_file_id++;
      e->job = std::make_shared<WriteJob>(WriteJob{e->key, e->file_id, Value{e->type, e->bytes}});
      queue.push_back(Job{e->job, 0});
      work_cv.notify_one();
    }
    return e->nbytes;
  }
  bool can_choose() const { return coldest != nullptr && !error; }
  std::uint64_t spill_until(std::uint64_t limit, Garbage& garbage) {
    std::uint64_t chosen = 0;
    while (memory - pending > limit && can_choose()) chosen += choose(coldest, garbage);
    return chosen;
  }
  void keep_to_target(Garbage& garbage) {
    if (target > 0) spill_until(target, garbage);
  }
  bool larger_than_target(std::uint64_t nbytes) const { return target > 0 && nbytes > target; }

  // Forgets `e` (erased or replaced): cancels its write, queues the removal of its file.
  void drop(Entry* e, Garbage& garbage) {
    lru_remove(e);
    if (e->job) {
      e->job->cancelled = true;
      if (e->drop_when_written) pending -= e->nbytes;
      e->job.reset();
    }
    if (e->file) {
      --counts.files;
      counts.disk_bytes -= e->file->file_bytes();
      queue.push_back(Job{nullptr, e->file_id});
      work_cv.notify_one();
    }
    if (e->in_memory) {
      memory -= e->nbytes;
      garbage.push_back(std::move(e->bytes));
    } else {
      spilled -= e->nbytes;
    }
  }

  // ---- the spill thread ------------------------------------------------------------------
  void run() {
    Garbage garbage;
    std::unique_lock lock(mutex);
    for (;;) {
      work_cv.wait(lock, [&] { return stop || (!queue.empty() && !held); });
      if (stop) return;  // what is queued goes with the directory
      Job job = std::move(queue.front());
      queue.pop_front();
      busy = true;
      if (job.write) {
        write(job.write, lock, garbage);
      } else {
        lock.unlock();
        ::unlinkat(dir.fd(), spill_file_name(job.unlink_id).c_str(), 0);
        lock.lock();
      }
      job = {};
      if (!garbage.empty()) {
        lock.unlock();
        garbage.clear();
        lock.lock();
      }
      busy = false;
      if (queue.empty()) idle_cv.notify_all();
      if (was_backlogged && pending <= backlog_limit()) {
        was_backlogged = false;
        if (on_drained) {
          auto cb = on_drained;
          lock.unlock();
          cb();
          lock.lock();
        }
      }
    }
  }

  void write(const std::shared_ptr<WriteJob>& job, std::unique_lock<std::mutex>& lock, Garbage& garbage) {
    if (job->cancelled) return;
    if (error) return finish_write(*job, nullptr, garbage);  // paused: stays in memory, unwritten
    Value value = std::move(job->value);
    const bool compress = options.compress;
    const std::string name = spill_file_name(job->file_id);
    lock.unlock();
    SpillWriteResult result = write_spill_file(dir.fd(), name, value, compress);
    value = Value();  // the entry still holds the bytes: dropping this copy frees nothing
    lock.lock();
    if (job->cancelled) {
      if (result.error == 0) {
        lock.unlock();
        ::unlinkat(dir.fd(), name.c_str(), 0);
        lock.lock();
      }
      return;
    }
    finish_write(*job, &result, garbage);
  }

  // A write's outcome (null: not tried, writes are paused), for a job not cancelled.
  void finish_write(const WriteJob& job, const SpillWriteResult* result, Garbage& garbage) {
    Entry* e = entries.find(job.key);
    if (e == nullptr || e->job.get() != &job) return;  // not reachable: erasing cancels
    e->job.reset();
    if (result == nullptr || result->error != 0) {
      if (result != nullptr) {
        ++counts.write_failures;
        if (!error)
          error = "cannot spill to " + dir.path() + ": " + result->what + " (" + std::to_string(e->nbytes) +
                  " bytes kept in memory)";
      }
      if (e->drop_when_written) {  // back where it was: the least recently used
        e->drop_when_written = false;
        pending -= e->nbytes;
        lru_push_cold(e);
      }
      return;
    }
    e->file = result->info;
    ++counts.files;
    ++counts.values_written;
    counts.disk_bytes += result->info.file_bytes();
    counts.bytes_written += result->info.file_bytes();
    if (e->drop_when_written) {
      e->drop_when_written = false;
      pending -= e->nbytes;
      release(e, garbage);
    }
  }

  SpillDirectory dir;  // first: removed last, after the thread stopped writing into it
  SpillOptions options;
  std::mutex mutex;
  std::condition_variable work_cv;  // the spill thread waits for jobs
  std::condition_variable idle_cv;  // flush() waits for the queue to empty
  KeyedTable<Entry> entries;
  Entry* coldest = nullptr;
  Entry* hottest = nullptr;
  std::deque<Job> queue;
  bool busy = false;  // the spill thread is doing a job it took off the queue
  bool stop = false;
  bool held = false;  // hold_writes_for_testing
  bool was_backlogged = false;     // on_drained is due once the backlog is cleared
  std::function<void()> on_drained;

  // Writes queued beyond this hold new tasks back (backlogged()): a worker computing faster
  // than its disk writes would otherwise fill its memory with values waiting to be written.
  std::uint64_t backlog_limit() const {
    const std::uint64_t floor = std::uint64_t{4} << 20;
    return options.target_bytes ? std::max(options.target_bytes / 8, floor) : std::uint64_t{64} << 20;
  }
  std::uint64_t target = 0;
  std::uint64_t memory = 0;
  std::uint64_t spilled = 0;
  std::uint64_t pending = 0;
  std::uint64_t next_file_id = 1;
  std::optional<std::string> error;
  SpillStats counts;
  std::thread thread;  // last: started once everything above exists
};

SpillingStore::SpillingStore(SpillOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
SpillingStore::~SpillingStore() = default;

void SpillingStore::put(const std::string& key, Value value, std::uint64_t nbytes) {
  Impl::Garbage garbage;
  std::lock_guard lock(impl_->mutex);
  auto& s = *impl_;
  if (auto* old = s.entries.find(key)) {
    s.drop(old, garbage);
    s.entries.erase(key);
  }
  auto entry = std::make_unique<Impl::Entry>();
  entry->key = key;
  entry->type = std::move(value.type);
  entry->bytes = std::move(value.bytes);
  entry->nbytes = nbytes;
  auto* e = s.entries.insert(std::move(entry));
  s.memory += nbytes;
  if (s.larger_than_target(nbytes) && !s.error) {
    // As Dask's "Spilling <key> ... larger than the target": still stored, on disk at once.
    log().warn("value '{}' of {} is larger than the memory target of {}: it goes to disk at once", key,
               format_byte_size(nbytes), format_byte_size(s.options.target_bytes));
    s.choose(e, garbage);  // straight to disk: pushing out everything else would not make it fit
  } else {
    s.lru_push_hot(e);
    s.keep_to_target(garbage);
  }
}

std::optional<Value> SpillingStore::get(const std::string& key) const {
  Impl::Garbage garbage;
  std::lock_guard lock(impl_->mutex);
  auto& s = *impl_;
  auto* e = s.entries.find(key);
  if (e == nullptr) return std::nullopt;
  if (e->in_memory) {
    Value v{e->type, e->bytes};
    if (!e->drop_when_written) {
      s.lru_push_hot(e);
    } else if (!s.larger_than_target(e->nbytes)) {  // used while being written: it stays once written
      e->drop_when_written = false;
      s.pending -= e->nbytes;
      s.lru_push_hot(e);
      s.keep_to_target(garbage);
    }
    return v;
  }
  Value v = read_spill_file(s.dir.fd(), spill_file_name(e->file_id), e->type, *e->file);
  ++s.counts.values_unspilled;
  if (s.larger_than_target(e->nbytes)) return v;  // it would be the first to go again
  e->bytes = v.bytes;
  e->in_memory = true;
  s.spilled -= e->nbytes;
  s.memory += e->nbytes;
  s.lru_push_hot(e);
  s.keep_to_target(garbage);
  return v;
}

bool SpillingStore::contains(const std::string& key) const {
  std::lock_guard lock(impl_->mutex);
  return impl_->entries.find(key) != nullptr;
}

bool SpillingStore::erase(const std::string& key) {
  Impl::Garbage garbage;
  std::lock_guard lock(impl_->mutex);
  auto* e = impl_->entries.find(key);
  if (e == nullptr) return false;
  impl_->drop(e, garbage);
  impl_->entries.erase(key);
  return true;
}

std::vector<std::string> SpillingStore::keys() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::string> out;
  out.reserve(impl_->entries.size());
  impl_->entries.for_each([&](const Impl::Entry& e) { out.push_back(e.key); });
  return out;
}

std::uint64_t SpillingStore::managed_bytes() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->memory + impl_->spilled;
}
std::uint64_t SpillingStore::memory_bytes() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->memory;
}
std::uint64_t SpillingStore::spilled_bytes() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->spilled;
}
std::uint64_t SpillingStore::pending_bytes() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->pending;
}
bool SpillingStore::backlogged() const {
  std::lock_guard lock(impl_->mutex);
  if (impl_->pending <= impl_->backlog_limit() || impl_->error) return false;  // an error spills nothing more
  impl_->was_backlogged = true;
  return true;
}
void SpillingStore::set_on_drained(std::function<void()> callback) {
  std::lock_guard lock(impl_->mutex);
  impl_->on_drained = std::move(callback);
}
std::size_t SpillingStore::size() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->entries.size();
}

std::uint64_t SpillingStore::target() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->target;
}

void SpillingStore::set_target(std::uint64_t bytes) {
  Impl::Garbage garbage;
  std::lock_guard lock(impl_->mutex);
  impl_->target = bytes;
  impl_->keep_to_target(garbage);
}

bool SpillingStore::larger_than_target(std::uint64_t nbytes) const {
  std::lock_guard lock(impl_->mutex);
  return impl_->larger_than_target(nbytes);
}

std::uint64_t SpillingStore::spill_lru(std::uint64_t n_bytes) {
  Impl::Garbage garbage;
  std::lock_guard lock(impl_->mutex);
  std::uint64_t chosen = 0;
  while (chosen < n_bytes && impl_->can_choose()) chosen += impl_->choose(impl_->coldest, garbage);
  return chosen;
}

std::uint64_t SpillingStore::spill_until(std::uint64_t memory_bytes) {
  Impl::Garbage garbage;
  std::lock_guard lock(impl_->mutex);
  return impl_->spill_until(memory_bytes, garbage);
}

void SpillingStore::flush() const {
  std::unique_lock lock(impl_->mutex);
  impl_->idle_cv.wait(lock, [&] { return impl_->queue.empty() && !impl_->busy; });
}

std::optional<std::string> SpillingStore::last_error() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->error;
}

void SpillingStore::clear_error() {
  Impl::Garbage garbage;
  std::lock_guard lock(impl_->mutex);
  impl_->error.reset();
  impl_->keep_to_target(garbage);
}

bool SpillingStore::is_spilled(const std::string& key) const {
  std::lock_guard lock(impl_->mutex);
  auto* e = impl_->entries.find(key);
  return e != nullptr && !e->in_memory;
}

std::vector<std::string> SpillingStore::lru_keys() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::string> out;
  for (auto* e = impl_->coldest; e != nullptr; e = e->hotter) out.push_back(e->key);
  return out;
}

const std::string& SpillingStore::directory() const { return impl_->dir.path(); }

SpillStats SpillingStore::stats() const {
  std::lock_guard lock(impl_->mutex);
  SpillStats out = impl_->counts;
  out.memory_bytes = impl_->memory;
  out.spilled_bytes = impl_->spilled;
  out.pending_bytes = impl_->pending;
  return out;
}

void SpillingStore::hold_writes_for_testing(bool hold) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->held = hold;
  }
  impl_->work_cv.notify_all();
}

}  // namespace distrib::detail::wrk
