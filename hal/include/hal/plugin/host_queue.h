// hal/plugin/host_queue.h: an in-order work queue on a host thread, events that
// complete on it, and a command-record log: the parts of a stream that any backend
// executing on the host (the CPU backend, a simulator, a template) shares.
// Part of the plugin kit; header-only.
//
// Contract
// - HostQueue runs tasks (any callable returning Status) in enqueue order on one worker
//   thread. A task returning a failed Status makes the queue "failed": later tasks
//   marked kSkippable are skipped (counted as aborted) until synchronize() returns that
//   first error and clears it. Tasks marked kAlways (event records/waits, host
//   functions) always run, so waiters never hang on a failed stream.
// - A task's captures are destroyed before it counts as complete.
// - synchronize() waits until every task enqueued before the call has run.
// - The destructor drains the queue and joins the worker.
// - HostEvent completes generations: record() takes a new generation number, the
//   queue's task completes it with a timestamp; waits wait for the generation current
//   when they were issued.
//
// Performance (why it looks the way it does): streams of tiny ops must sustain > 1M
// commands/s. Tasks are stored in place (up to kInlineTaskBytes of captures) in vectors
// the producer and the worker swap, so enqueue allocates nothing in steady state (a
// heap-allocated std::function per command cost a cross-thread malloc/free, whose arena
// lock the two threads fought over). Completion is an atomic counter; the worker spins
// briefly for new work before sleeping and is only signalled when asleep; synchronize()
// spins briefly before blocking, and the worker wakes it only when the command it waits
// for has run, not at every command. Spins are bounded (tens of microseconds).
//
// Threading: enqueue/synchronize are thread-safe; tasks run on the worker thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "hal/command_record.h"
#include "hal/plugin/spin_wait.h"
#include "hal/plugin_adapter.h"
#include "hal/status.h"

namespace hal::plugin {

namespace detail {

// Polls `ready` for up to `budget`; true as soon as it holds. After the first couple of
// microseconds it yields between polls, so a waiting thread gives its core to runnable
// threads (the ones computing what it waits for, on a machine with few cores).
template <typename Pred>
bool spin_until(Pred&& ready, std::chrono::nanoseconds budget) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + budget;
  const auto yield_after = start + std::chrono::microseconds(2);
  for (;;) {
    for (int i = 0; i < 32; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return ready();
    if (now >= yield_after) std::this_thread::yield();
  }
}

// A test-and-test-and-set lock for critical sections of a few dozen instructions (the
// pending list). Unlike std::mutex it never sleeps in the kernel on a brief collision;
// after a short spin it yields, so a preempted holder does not stall it for long.
class SpinLock {
 public:
  void lock() {
    for (int spins = 0;; ++spins) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < 256)
          cpu_relax();
        else
          std::this_thread::yield();
      }
    }
  }
  void unlock() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace detail

class HostQueue {
 public:
  enum class Policy { kSkippable, kAlways };
  using Task = std::function<Status()>;  // any callable returning Status is accepted

  // Captures up to this size live inside the queue; larger ones go to the heap.
  static constexpr size_t kInlineTaskBytes = 1008;

  HostQueue() : worker_([this] { run(); }) {}
  ~HostQueue() {
    {
      std::lock_guard<detail::SpinLock> lock(pending_lock_);
      stopping_ = true;
      has_work_.store(true, std::memory_order_release);
    }
    { std::lock_guard<std::mutex> lock(mu_); }
    work_cv_.notify_one();
    worker_.join();
  }
  HostQueue(const HostQueue&) = delete;
  HostQueue& operator=(const HostQueue&) = delete;

  template <typename F>
  void enqueue(F&& task, Policy policy = Policy::kSkippable) {
    bool wake;
    {
      std::lock_guard<detail::SpinLock> lock(pending_lock_);
      pending_.emplace_back().emplace(std::forward<F>(task), policy);
      enqueued_.store(enqueued_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
      has_work_.store(true, std::memory_order_release);
      wake = worker_sleeping_;
    }
    if (wake) {
      // The worker checks has_work_ under mu_ before it waits: taking mu_ here orders
      // this signal after that check, so it cannot be lost.
      { std::lock_guard<std::mutex> lock(mu_); }
      work_cv_.notify_one();
    }
  }

  Status synchronize() {
    const uint64_t target = enqueued_.load(std::memory_order_acquire);
    std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
    if (completed_.load(std::memory_order_acquire) < target) {
      detail::spin_until([&] { return completed_.load(std::memory_order_acquire) >= target; },
                         std::chrono::microseconds(50));
      lock.lock();
      // Ask the worker to signal when `target` completes, not on every command: woken at
      // each of a decode step's ~100 commands, this thread took a core from the threads
      // computing them ~6,000 times a second on a 2-core machine. The request is published
      // before the check (both seq_cst): either the check sees the completion or the
      // worker, counting it, sees the request and signals under mu_, which this thread
      // holds until it sleeps.
      for (;;) {
        if (target < wake_at_.load(std::memory_order_relaxed))
          wake_at_.store(target, std::memory_order_seq_cst);
        if (completed_.load(std::memory_order_seq_cst) >= target) break;
        done_cv_.wait(lock);
      }
    } else {
      lock.lock();
    }
    Status s = std::move(error_);
    error_ = Status();
    failed_.store(false, std::memory_order_release);
    const uint64_t aborted = aborted_.exchange(0, std::memory_order_relaxed);
    if (!s.ok() && aborted > 0) {
      s = Status(s.code(),
                 s.message() + " (" + std::to_string(aborted) +
                     " later command(s) of the stream were skipped)",
                 s.detail());
    }
    return s;
  }

  // True when the worker has nothing pending (for tests and diagnostics).
  bool idle() const {
    return completed_.load(std::memory_order_acquire) == enqueued_.load(std::memory_order_acquire);
  }

 private:
  // A type-erased task stored in place.
  class Command {
   public:
    Command() = default;
    Command(Command&& o) noexcept : ops_(o.ops_), policy_(o.policy_) {
      if (ops_) ops_->relocate(o.storage_, storage_);
      o.ops_ = nullptr;
    }
    Command& operator=(Command&&) = delete;
    ~Command() { reset(); }

    template <typename F>
    void emplace(F&& f, Policy policy) {
      using Fn = std::decay_t<F>;
      policy_ = policy;
      if constexpr (sizeof(Fn) <= kInlineTaskBytes && alignof(Fn) <= alignof(std::max_align_t) &&
                    std::is_nothrow_move_constructible_v<Fn>) {
        ::new (static_cast<void*>(storage_)) Fn(std::forward<F>(f));
        ops_ = &kInlineOps<Fn>;
      } else {
        Fn* heap = new Fn(std::forward<F>(f));
        std::memcpy(storage_, &heap, sizeof heap);
        ops_ = &kHeapOps<Fn>;
      }
    }
    Policy policy() const { return policy_; }
    Status invoke() { return ops_->invoke(storage_); }
    void reset() {
      if (ops_) ops_->destroy(storage_);
      ops_ = nullptr;
    }

   private:
    struct Ops {
      Status (*invoke)(void*);
      void (*relocate)(void* from, void* to);
      void (*destroy)(void*);
    };
    template <typename Fn>
    static constexpr Ops kInlineOps = {[](void* p) -> Status { return (*static_cast<Fn*>(p))(); },
                                       [](void* from, void* to) {
                                         ::new (to) Fn(std::move(*static_cast<Fn*>(from)));
                                         static_cast<Fn*>(from)->~Fn();
                                       },
                                       [](void* p) { static_cast<Fn*>(p)->~Fn(); }};
    template <typename Fn>
    static Fn* heap_ptr(void* p) {
      Fn* f;
      std::memcpy(&f, p, sizeof f);
      return f;
    }
    template <typename Fn>
    static constexpr Ops kHeapOps = {
        [](void* p) -> Status { return (*heap_ptr<Fn>(p))(); },
        [](void* from, void* to) { std::memcpy(to, from, sizeof(Fn*)); },
        [](void* p) { delete heap_ptr<Fn>(p); }};

    const Ops* ops_ = nullptr;
    Policy policy_ = Policy::kSkippable;
    alignas(std::max_align_t) unsigned char storage_[kInlineTaskBytes];
  };

  // Maps the pages of the stack the tasks will run on and gives the thread its malloc
  // arena before any task runs: a new thread's stack is untouched memory, and the first
  // tasks on it took its page faults inside their command records (the CPU backend: the
  // first ops of a new stream ran 2-3x as long as later ones).
  static void warm_up_thread() {
    constexpr size_t kStackBytes = 64 * 1024;
    unsigned char stack[kStackBytes];
    for (size_t i = 0; i < kStackBytes; i += 256) stack[i] = 0;
    asm volatile("" : : "r"(stack) : "memory");  // the writes happen: the pages are mapped
    std::free(std::malloc(1));
  }

  void run() {
    warm_up_thread();
    std::vector<Command> batch;
    for (;;) {
      // Work usually follows work: poll a little before paying for a sleep and a wake.
      if (!has_work_.load(std::memory_order_acquire)) {
        detail::spin_until([&] { return has_work_.load(std::memory_order_acquire); },
                           std::chrono::microseconds(20));
      }
      {
        std::lock_guard<detail::SpinLock> lock(pending_lock_);
        if (pending_.empty()) {
          if (stopping_) return;
          worker_sleeping_ = true;
        } else {
          batch.swap(pending_);  // pending_ takes batch's emptied storage: no allocation
          has_work_.store(false, std::memory_order_relaxed);
        }
      }
      if (batch.empty()) {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] { return has_work_.load(std::memory_order_acquire); });
        lock.unlock();
        std::lock_guard<detail::SpinLock> plock(pending_lock_);
        worker_sleeping_ = false;
        continue;
      }
      for (Command& item : batch) {
        Status s;
        if (failed_.load(std::memory_order_acquire) && item.policy() == Policy::kSkippable) {
          aborted_.fetch_add(1, std::memory_order_relaxed);
        } else {
          try {
            s = item.invoke();
          } catch (const std::bad_alloc&) {
            s = out_of_memory("out of host memory while running a command");
          } catch (const std::exception& e) {
            s = internal_error(std::string("command threw: ") + e.what());
          }
        }
        item.reset();  // release captures before signalling completion
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          if (error_.ok()) error_ = std::move(s);
          failed_.store(true, std::memory_order_release);
        }
        const uint64_t done = completed_.fetch_add(1, std::memory_order_seq_cst) + 1;
        if (done >= wake_at_.load(std::memory_order_seq_cst)) {
          // Under the lock: ordered after a waiter's check, and its request is cleared
          // before it can make a new one (woken waiters not yet done ask again).
          {
            std::lock_guard<std::mutex> lock(mu_);
            wake_at_.store(kNoWaiter, std::memory_order_relaxed);
          }
          done_cv_.notify_all();
        }
      }
      batch.clear();
    }
  }

  detail::SpinLock pending_lock_;
  std::vector<Command> pending_;        // guarded by pending_lock_
  bool worker_sleeping_ = false;        // guarded by pending_lock_
  bool stopping_ = false;               // guarded by pending_lock_
  std::atomic<uint64_t> enqueued_{0};   // written under pending_lock_
  std::atomic<uint64_t> completed_{0};  // written by the worker
  std::atomic<uint64_t> aborted_{0};
  std::atomic<bool> failed_{false};
  std::atomic<bool> has_work_{false};  // set with a push, cleared with the swap
  // The lowest completed_ count a thread in synchronize() sleeps until (kNoWaiter: none);
  // written under mu_.
  static constexpr uint64_t kNoWaiter = ~uint64_t(0);
  std::atomic<uint64_t> wake_at_{kNoWaiter};
  mutable std::mutex mu_;  // for sleeping and waking, and error_
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  Status error_;        // guarded by mu_
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
    // Notify under the lock: a waiter that sees the completion may destroy the event at
    // once, so nothing may touch it after the lock is released.
    std::lock_guard<std::mutex> lock(mu_);
    if (generation > completed_) {
      completed_ = generation;
      timestamp_ = timestamp_ns;
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
