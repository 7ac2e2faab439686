// hal/plugin/host_queue.h: an in-order work queue on a host thread, events that
// complete on it, and a command-record log: the parts of a stream that any backend
// executing on the host (the CPU backend, a simulator, a template) shares.
// Part of the plugin kit; header-only.
//
// Contract
// - HostQueue runs tasks in enqueue order on one worker thread. A task returning a
//   failed Status makes the queue "failed": later tasks marked kSkippable are skipped
//   (counted as aborted) until synchronize() returns that first error and clears it.
//   Tasks marked kAlways (event records/waits, host functions) always run, so waiters
//   never hang on a failed stream.
// - synchronize() waits until every task enqueued before the call has run.
// - The destructor drains the queue and joins the worker.
// - HostEvent completes generations: record() takes a new generation number, the
//   queue's task completes it with a timestamp; waits wait for the generation current
//   when they were issued.
//
// Threading: enqueue/synchronize are thread-safe; tasks run on the worker thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hal/command_record.h"
#include "hal/plugin_adapter.h"
#include "hal/status.h"

namespace hal::plugin {

class HostQueue {
 public:
  enum class Policy { kSkippable, kAlways };
  using Task = std::function<Status()>;

  HostQueue() : worker_([this] { run(); }) {}
  ~HostQueue() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    work_cv_.notify_one();
    worker_.join();
  }
  HostQueue(const HostQueue&) = delete;
  HostQueue& operator=(const HostQueue&) = delete;

  void enqueue(Task task, Policy policy = Policy::kSkippable) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.push_back({std::move(task), policy});
      ++enqueued_;
    }
    work_cv_.notify_one();
  }

  Status synchronize() {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t target = enqueued_;
    done_cv_.wait(lock, [&] { return completed_ >= target; });
    Status s = std::move(error_);
    error_ = Status();
    if (!s.ok() && aborted_ > 0) {
      s = Status(s.code(), s.message() + " (" + std::to_string(aborted_) +
                               " later command(s) of the stream were skipped)");
    }
    aborted_ = 0;
    return s;
  }

  // True when the worker has nothing pending (for tests and diagnostics).
  bool idle() const {
    std::lock_guard<std::mutex> lock(mu_);
    return completed_ == enqueued_;
  }

 private:
  struct Item {
    Task task;
    Policy policy;
  };

  void run() {
    std::vector<Item> batch;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
        if (pending_.empty() && stopping_) return;
        batch.assign(std::make_move_iterator(pending_.begin()),
                     std::make_move_iterator(pending_.end()));
        pending_.clear();
      }
      for (Item& item : batch) {
        bool failed;
        {
          std::lock_guard<std::mutex> lock(mu_);
          failed = !error_.ok();
        }
        Status s;
        if (failed && item.policy == Policy::kSkippable) {
          std::lock_guard<std::mutex> lock(mu_);
          ++aborted_;
        } else {
          try {
            s = item.task();
          } catch (const std::bad_alloc&) {
            s = out_of_memory("out of host memory while running a command");
          } catch (const std::exception& e) {
            s = internal_error(std::string("command threw: ") + e.what());
          }
        }
        item.task = nullptr;  // release captures before signalling completion
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (!s.ok() && error_.ok()) error_ = std::move(s);
          ++completed_;
        }
        done_cv_.notify_all();
      }
      batch.clear();
    }
  }

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<Item> pending_;
  uint64_t enqueued_ = 0;
  uint64_t completed_ = 0;
  uint64_t aborted_ = 0;
  Status error_;
  bool stopping_ = false;
  std::thread worker_;  // last: starts after the members above exist
};

class HostEvent : public EventImpl {
 public:
  // Takes a new generation; the caller enqueues a task that calls complete(gen, ts).
  uint64_t begin_record() {
    std::lock_guard<std::mutex> lock(mu_);
    return ++recorded_;
  }
  void complete(uint64_t generation, uint64_t timestamp_ns) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (generation > completed_) {
        completed_ = generation;
        timestamp_ = timestamp_ns;
      }
    }
    cv_.notify_all();
  }
  // The generation a wait issued now must wait for.
  uint64_t current_generation() const {
    std::lock_guard<std::mutex> lock(mu_);
    return recorded_;
  }
  // Blocks until `generation` completed; returns its (or a later) timestamp.
  uint64_t wait_for(uint64_t generation) const {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return completed_ >= generation; });
    return timestamp_;
  }

  Status synchronize() override {
    wait_for(current_generation());
    return ok_status();
  }
  Result<bool> query() override {
    std::lock_guard<std::mutex> lock(mu_);
    return completed_ >= recorded_;
  }
  Result<uint64_t> timestamp_ns() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (recorded_ == 0) return failed_precondition("event was never recorded");
    if (completed_ < recorded_) return failed_precondition("event has not completed yet");
    return timestamp_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  uint64_t recorded_ = 0;
  uint64_t completed_ = 0;
  uint64_t timestamp_ = 0;
};

// Completed-command records of one stream (enabled by HAL_STREAM_FLAG_RECORD_COMMANDS).
class RecordLog {
 public:
  explicit RecordLog(bool enabled) : enabled_(enabled) {}
  bool enabled() const { return enabled_; }
  void add(const CommandRecord& r) {
    if (!enabled_) return;
    std::lock_guard<std::mutex> lock(mu_);
    records_.push_back(r);
  }
  size_t take(CommandRecord* out, size_t capacity) {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t n = capacity < records_.size() ? capacity : records_.size();
    for (size_t i = 0; i < n; ++i) out[i] = records_[i];
    records_.erase(records_.begin(), records_.begin() + ptrdiff_t(n));
    return n;
  }

 private:
  bool enabled_;
  std::mutex mu_;
  std::deque<CommandRecord> records_;
};

}  // namespace hal::plugin
