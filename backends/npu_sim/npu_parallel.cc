#include "npu_parallel.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace hal::npu_sim {

namespace {

int detect_threads() {
  if (const char* env = std::getenv("HAL_NPU_SIM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return std::min(n, 256);
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? int(hw) : 1;
}

struct Job {
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int64_t chunk = 1;
  int64_t chunks = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  int holders = 0;  // workers inside run_chunks (guarded by the pool mutex)
};

// Claims and runs chunks of `job` until none is left; returns how many it ran.
int64_t run_chunks(Job& job) {
  int64_t ran = 0;
  for (;;) {
    const int64_t c = job.next.fetch_add(1);
    if (c >= job.chunks) break;
    const int64_t b = c * job.chunk;
    const int64_t e = std::min(job.n, b + job.chunk);
    (*job.fn)(b, e);
    ++ran;
  }
  return ran;
}

class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 0; i + 1 < threads; ++i) workers_.emplace_back([this] { work(); });
  }

  void run(Job& job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(&job);
    }
    work_cv_.notify_all();
    const int64_t mine = run_chunks(job);
    job.done.fetch_add(mine);
    std::unique_lock<std::mutex> lock(mu_);
    remove(&job);
    done_cv_.wait(lock, [&] { return job.done.load() == job.chunks && job.holders == 0; });
  }

 private:
  void remove(Job* job) {
    auto it = std::find(jobs_.begin(), jobs_.end(), job);
    if (it != jobs_.end()) jobs_.erase(it);
  }

  void work() {
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] { return !jobs_.empty(); });
        job = jobs_.front();
        ++job->holders;
      }
      const int64_t ran = run_chunks(*job);
      job->done.fetch_add(ran);
      {
        std::lock_guard<std::mutex> lock(mu_);
        --job->holders;
        remove(job);  // every chunk is claimed: nobody else should pick it up
      }
      done_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<Job*> jobs_;
  std::vector<std::thread> workers_;
};

Pool& pool() {
  // Never destroyed: worker threads live as long as the process (plugins stay mapped).
  static Pool* p = new Pool(thread_count());
  return *p;
}

}  // namespace

int thread_count() {
  static const int n = detect_threads();
  return n;
}

void parallel_for_impl(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  Job job;
  job.fn = &fn;
  job.n = n;
  const int64_t max_chunks = int64_t(thread_count()) * 4;
  job.chunks = std::min((n + grain - 1) / grain, max_chunks);
  job.chunk = (n + job.chunks - 1) / job.chunks;
  job.chunks = (n + job.chunk - 1) / job.chunk;
  pool().run(job);
}

}  // namespace hal::npu_sim
