// Internal to the CTS: how a case is written, the context it runs in, and the helpers
// the case files share. Not installed.
//
// A case is a name and a function returning a Verdict. Cases use only the public HAL
// API; every HAL call that must succeed goes through CTS_OK/CTS_ASSIGN so a failure
// names the step and carries the device's status. The runner (cts.cc) adds the leak
// check, the watchdog and exception handling around every case.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "hal/cts.h"
#include "hal/hal.h"

namespace hal::cts::detail {

struct Verdict {
  Outcome outcome = Outcome::kPass;
  std::string reason;
};
inline Verdict pass(std::string note = {}) { return {Outcome::kPass, std::move(note)}; }
inline Verdict fail(std::string why) { return {Outcome::kFail, std::move(why)}; }
inline Verdict skip(std::string why) { return {Outcome::kSkip, std::move(why)}; }

// Everything a case may use.
struct Context {
  Platform& platform;
  Device& device;
  // Other devices of the device's plugin (peer copies and native event waits).
  std::vector<Device*> same_plugin_peers;
  // One device of each other plugin (host-staged copies, cross-plugin waits).
  std::vector<Device*> other_plugin_devices;
  // Memory kinds the device accepted a small allocation of, and why the others were
  // refused.
  std::vector<MemoryKind> accepted_kinds;
  std::map<MemoryKind, std::string> refused_kinds;
  uint64_t seed = 0;
  double wait_probe_s = 0.05;  // Options::wait_probe_s

  bool accepts(MemoryKind kind) const;
  // A generator seeded from the suite seed and `salt` (the case name), so each case
  // sees the same data whatever else runs.
  std::mt19937_64 rng(std::string_view salt) const;
};

using CaseFn = std::function<Verdict(Context&)>;
struct Case {
  std::string name;
  CaseFn fn;
};

// Each adds its group's cases for ctx's device (names are final; the filter applies).
void add_memory_cases(const Context& ctx, std::vector<Case>& cases);  // buffer, alloc, copy, fill
void add_stream_cases(const Context& ctx,
                      std::vector<Case>& cases);                  // stream, event, record, error
void add_op_cases(const Context& ctx, std::vector<Case>& cases);  // op
void add_channel_cases(const Context& ctx, std::vector<Case>& cases);  // channel
void add_executable_cases(const Context& ctx, std::vector<Case>& cases);  // executable

// ---- helpers shared by the case files ----------------------------------------------

// Fails the case when `expr` (a Status) is not ok, naming `what`.
#define CTS_OK(expr, what)                                                                 \
  do {                                                                                     \
    ::hal::Status cts_status_ = (expr);                                                    \
    if (!cts_status_.ok())                                                                 \
      return ::hal::cts::detail::fail(std::string(what) + ": " + cts_status_.to_string()); \
  } while (0)

#define CTS_CONCAT_INNER_(a, b) a##b
#define CTS_CONCAT_(a, b) CTS_CONCAT_INNER_(a, b)
// `CTS_ASSIGN(auto x, make_x(), "what");` binds the value or fails the case.
#define CTS_ASSIGN(lhs, expr, what) \
  CTS_ASSIGN_IMPL_(CTS_CONCAT_(cts_result_, __LINE__), lhs, expr, what)
#define CTS_ASSIGN_IMPL_(tmp, lhs, expr, what)                                            \
  auto tmp = (expr);                                                                      \
  if (!tmp.ok())                                                                          \
    return ::hal::cts::detail::fail(std::string(what) + ": " + tmp.status().to_string()); \
  lhs = std::move(tmp).value()

// Fails the case with `message` unless `cond`.
#define CTS_EXPECT(cond, message)                                       \
  do {                                                                  \
    if (!(cond)) return ::hal::cts::detail::fail(std::string(message)); \
  } while (0)

// A host function that blocks a stream until the case opens it. Ordering cases use it
// instead of "long" work so they are deterministic on any device speed.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return open; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mu);
      open = true;
    }
    cv.notify_all();
  }
  bool is_open() {
    std::lock_guard<std::mutex> lock(mu);
    return open;
  }
};

// When a case returns, early or not: opens its gate (if any) and waits for its streams,
// so no enqueued work outlives the buffers, events and host data it uses. Declare it
// after all of those (it is destroyed first).
struct Drain {
  std::vector<Stream*> streams;
  std::shared_ptr<Gate> gate;
  ~Drain() {
    if (gate) gate->release();
    for (Stream* s : streams) s->synchronize().ignore();
  }
};

// Random bytes.
std::vector<uint8_t> random_bytes(std::mt19937_64& rng, size_t n);

// Copies host -> buffer (at offset) and waits.
Status upload(Stream& stream, const Buffer& buffer, uint64_t offset, const void* data, uint64_t n);
// Copies buffer (at offset) -> host and waits.
Status download(Stream& stream, const Buffer& buffer, uint64_t offset, void* data, uint64_t n);
// The whole buffer's contents.
Result<std::vector<uint8_t>> read_all(Stream& stream, const Buffer& buffer);

// "" when equal, else where the first difference is ("byte 17: got 0x3, want 0xab").
std::string compare_bytes(const uint8_t* got, const uint8_t* want, size_t n,
                          uint64_t base_offset = 0);

// The status code name, for messages ("invalid argument").
std::string code_name(const Status& s);

// A spec of `kind` over `inputs` whose output is the inferred shape, dense, of
// `out_dtype` (kInvalid: the inferred dtype).
Result<OpSpec> make_spec(OpKind kind, const OpAttributes& attrs,
                         const std::vector<TensorDesc>& inputs, DType out_dtype = DType::kInvalid);
// "matmul(f32[2, 3], f32[3, 4]) -> f32[2, 4]"
std::string describe(const OpSpec& spec);

}  // namespace hal::cts::detail
