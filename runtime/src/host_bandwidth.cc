// Host read bandwidth (hal/runtime/host_bandwidth.h).
#include "hal/runtime/host_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace hal::runtime {

double measure_host_read_bandwidth(int threads, uint64_t bytes, int passes) {
  typedef uint64_t v4u __attribute__((vector_size(32)));
  threads = std::max(threads, 1);
  const size_t n = size_t(bytes / sizeof(v4u));
  if (n == 0) return 0;
  std::unique_ptr<v4u[]> buf(new v4u[n]);
  auto run = [&](auto&& fn) {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(fn, t);
    for (auto& th : pool) th.join();
  };
  auto part = [&](int t, size_t* begin, size_t* end) {
    *begin = n * size_t(t) / size_t(threads);
    *end = n * size_t(t + 1) / size_t(threads);
  };
  run([&](int t) {  // first touch by the thread that reads each part
    size_t b, e;
    part(t, &b, &e);
    for (size_t i = b; i < e; ++i) buf[i] = v4u{} + uint64_t(i);
  });
  double best = 1e30;
  std::vector<uint64_t> sums(static_cast<size_t>(threads));
  for (int p = 0; p < std::max(passes, 1); ++p) {
    const auto t0 = std::chrono::steady_clock::now();
    run([&](int t) {
      size_t i, end;
      part(t, &i, &end);
      v4u a{}, b{}, c{}, d{};
      for (; i + 4 <= end; i += 4) {
        a += buf[i];
        b += buf[i + 1];
        c += buf[i + 2];
        d += buf[i + 3];
      }
      const v4u s = a + b + c + d;
      sums[size_t(t)] = s[0] + s[1] + s[2] + s[3];
    });
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  volatile uint64_t sink = sums[0];  // keep the reads observable
  (void)sink;
  return double(n * sizeof(v4u)) / best;
}

}  // namespace hal::runtime
