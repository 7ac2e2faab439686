// CTS cases about execution: stream ordering, host functions, events within and across
// devices and plugins, accounting records, and error paths.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "cts_internal.h"

namespace hal::cts::detail {

namespace {

// Enqueues a gate wait; a skip verdict (as a string) when host functions are absent.
Status enqueue_gate(Stream& s, const std::shared_ptr<Gate>& gate) {
  return s.enqueue_host_func([gate] { gate->wait(); });
}

bool is_unimplemented(const Status& s) { return s.code() == StatusCode::kUnimplemented; }

// Polls `event` for up to `seconds`; true if it completed. Used only to catch a wait
// that does not block (a correct device never completes it while the gate is closed).
bool completes_within(const Event& event, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  do {
    Result<bool> done = event.query();
    if (done.ok() && *done) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  } while (std::chrono::steady_clock::now() < end);
  return false;
}

// ---- stream.* ---------------------------------------------------------------------

Verdict stream_fill_copy_chain(Context& ctx) {
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Buffer a, ctx.device.allocate(64), "allocate");
  CTS_ASSIGN(Buffer b, ctx.device.allocate(64 * 64), "allocate");
  Drain drain{{&s}, nullptr};
  // Each copy must see the fill enqueued just before it, not a later one.
  for (uint32_t i = 0; i < 64; ++i) {
    CTS_OK(s.fill(a, 0, 64, 0x01010101u * (i + 1), 4), "fill");
    CTS_OK(s.copy(a, 0, b, i * 64, 64), "copy");
  }
  std::vector<uint8_t> got(64 * 64);
  CTS_OK(download(s, b, 0, got.data(), got.size()), "read back");
  for (uint32_t i = 0; i < 64 * 64; ++i)
    CTS_EXPECT(got[i] == uint8_t(i / 64 + 1),
               "byte " + std::to_string(i) + " is " + std::to_string(got[i]) + ", want " +
                   std::to_string(i / 64 + 1) + ": work ran out of enqueue order");
  return pass();
}

Verdict stream_host_copy_chain(Context& ctx) {
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Buffer a, ctx.device.allocate(256), "allocate");
  CTS_ASSIGN(Buffer b, ctx.device.allocate(256 * 32), "allocate");
  auto rng = ctx.rng("stream.host_copy_chain");
  std::vector<std::vector<uint8_t>> host;
  for (int i = 0; i < 32; ++i) host.push_back(random_bytes(rng, 256));
  Drain drain{{&s}, nullptr};
  for (int i = 0; i < 32; ++i) {
    CTS_OK(s.copy_from_host(host[i].data(), a, 0, 256), "copy host to device");
    CTS_OK(s.copy(a, 0, b, uint64_t(i) * 256, 256), "copy device to device");
  }
  std::vector<uint8_t> got(256 * 32);
  CTS_OK(download(s, b, 0, got.data(), got.size()), "read back");
  for (int i = 0; i < 32; ++i) {
    const std::string diff = compare_bytes(got.data() + i * 256, host[i].data(), 256, i * 256);
    CTS_EXPECT(diff.empty(), "block " + std::to_string(i) + ": " + diff);
  }
  return pass();
}

Verdict stream_threads(Context& ctx) {
  constexpr int kThreads = 4, kRounds = 16, kBlock = 512;
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Buffer b, ctx.device.allocate(kThreads * kBlock), "allocate");
  auto rng = ctx.rng("stream.threads");
  std::vector<std::vector<std::vector<uint8_t>>> host(kThreads);
  for (auto& t : host)
    for (int r = 0; r < kRounds; ++r) t.push_back(random_bytes(rng, kBlock));
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string first_error;
  Drain drain{{&s}, nullptr};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        Status st = s.copy_from_host(host[t][r].data(), b, uint64_t(t) * kBlock, kBlock);
        if (!st.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (failures++ == 0) first_error = st.to_string();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CTS_EXPECT(failures == 0, "enqueue from a thread failed: " + first_error);
  std::vector<uint8_t> got(kThreads * kBlock);
  CTS_OK(download(s, b, 0, got.data(), got.size()), "read back");
  // Each thread's calls run in its own order, so its last copy wins its block.
  for (int t = 0; t < kThreads; ++t) {
    const std::string diff =
        compare_bytes(got.data() + t * kBlock, host[t][kRounds - 1].data(), kBlock, t * kBlock);
    CTS_EXPECT(diff.empty(), "thread " + std::to_string(t) + "'s block: " + diff);
  }
  return pass();
}

Verdict stream_host_func_order(Context& ctx) {
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Buffer a, ctx.device.allocate(4096), "allocate");
  auto rng = ctx.rng("stream.host_func");
  std::vector<std::vector<uint8_t>> data;
  for (int i = 0; i < 8; ++i) data.push_back(random_bytes(rng, 4096));
  std::vector<uint8_t> landing(4096);
  auto order = std::make_shared<std::vector<int>>();
  auto seen_ok = std::make_shared<std::vector<bool>>();
  Drain drain{{&s}, nullptr};
  for (int i = 0; i < 8; ++i) {
    CTS_OK(s.copy_from_host(data[i].data(), a, 0, 4096), "copy host to device");
    CTS_OK(s.copy_to_host(a, 0, landing.data(), 4096), "copy device to host");
    // Runs after the copy back completed: it must see block i.
    Status st = s.enqueue_host_func([i, order, seen_ok, &landing, &data] {
      order->push_back(i);
      seen_ok->push_back(std::memcmp(landing.data(), data[i].data(), 4096) == 0);
    });
    if (is_unimplemented(st)) {
      CTS_OK(s.synchronize(), "synchronize");
      return skip("the plugin has no host functions (optional ABI entry): " + st.message());
    }
    CTS_OK(st, "enqueue host function");
  }
  CTS_OK(s.synchronize(), "synchronize");
  CTS_EXPECT(order->size() == 8, "ran " + std::to_string(order->size()) + " of 8 host functions");
  for (int i = 0; i < 8; ++i) {
    CTS_EXPECT((*order)[i] == i, "host functions ran out of order");
    CTS_EXPECT((*seen_ok)[i], "host function " + std::to_string(i) +
                                  " ran before the copy enqueued ahead of it completed");
  }
  return pass();
}

Verdict stream_destroy_waits(Context& ctx) {
  const uint64_t size = uint64_t(1) << 20;
  auto rng = ctx.rng("stream.destroy_waits");
  const std::vector<uint8_t> data = random_bytes(rng, size);
  std::vector<uint8_t> back(size, 0);
  CTS_ASSIGN(Buffer a, ctx.device.allocate(size), "allocate");
  {
    CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
    CTS_OK(s.copy_from_host(data.data(), a, 0, size), "copy host to device");
    CTS_OK(s.copy_to_host(a, 0, back.data(), size), "copy device to host");
  }  // no synchronize: destroying the stream must wait for both copies
  CTS_EXPECT(back == data, "destroying a stream did not wait for its work: " +
                               compare_bytes(back.data(), data.data(), size));
  return pass();
}

Verdict stream_many(Context& ctx) {
  constexpr int kStreams = 8;
  std::vector<Stream> streams;
  std::vector<Buffer> buffers;
  auto rng = ctx.rng("stream.many");
  std::vector<std::vector<uint8_t>> data, back(kStreams, std::vector<uint8_t>(1000));
  for (int i = 0; i < kStreams; ++i) {
    CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream " + std::to_string(i));
    CTS_ASSIGN(Buffer b, ctx.device.allocate(1000), "allocate");
    streams.push_back(std::move(s));
    buffers.push_back(std::move(b));
    data.push_back(random_bytes(rng, 1000));
  }
  Drain drain;
  for (Stream& s : streams) drain.streams.push_back(&s);
  for (int i = 0; i < kStreams; ++i) {
    CTS_OK(streams[i].copy_from_host(data[i].data(), buffers[i], 0, 1000), "copy");
    CTS_OK(streams[i].copy_to_host(buffers[i], 0, back[i].data(), 1000), "copy");
  }
  for (int i = 0; i < kStreams; ++i) CTS_OK(streams[i].synchronize(), "synchronize");
  for (int i = 0; i < kStreams; ++i)
    CTS_EXPECT(back[i] == data[i], "stream " + std::to_string(i) + " returned wrong data");
  CTS_OK(streams[0].synchronize(), "synchronize an idle stream");
  return pass();
}

// ---- event.* ----------------------------------------------------------------------

Verdict event_never_recorded(Context& ctx) {
  CTS_ASSIGN(Event e, ctx.device.create_event(), "create event");
  CTS_ASSIGN(bool done, e.query(), "query");
  CTS_EXPECT(done, "an event never recorded must count as complete");
  CTS_OK(e.synchronize(), "synchronize a never-recorded event");
  return pass();
}

Verdict event_record_synchronize(Context& ctx) {
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Event e, ctx.device.create_event(), "create event");
  const uint64_t size = uint64_t(1) << 20;
  auto rng = ctx.rng("event.record");
  const std::vector<uint8_t> data = random_bytes(rng, size);
  std::vector<uint8_t> back(size);
  CTS_ASSIGN(Buffer a, ctx.device.allocate(size), "allocate");
  Drain drain{{&s}, nullptr};
  CTS_OK(s.copy_from_host(data.data(), a, 0, size), "copy");
  CTS_OK(s.copy_to_host(a, 0, back.data(), size), "copy");
  CTS_OK(s.record(e), "record");
  CTS_OK(e.synchronize(), "event synchronize");
  // Everything before the record is done once the event is.
  CTS_EXPECT(back == data, "the event completed before the work recorded ahead of it");
  CTS_ASSIGN(bool done, e.query(), "query");
  CTS_EXPECT(done, "query() is false after synchronize()");
  CTS_ASSIGN(uint64_t ts, e.timestamp_ns(), "timestamp of a completed event");
  (void)ts;
  CTS_OK(s.synchronize(), "stream synchronize");
  return pass();
}

Verdict event_timestamps(Context& ctx) {
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Event e1, ctx.device.create_event(), "create event");
  CTS_ASSIGN(Event e2, ctx.device.create_event(), "create event");
  CTS_ASSIGN(Event e3, ctx.device.create_event(), "create event");
  CTS_ASSIGN(Buffer a, ctx.device.allocate(uint64_t(1) << 20), "allocate");
  CTS_ASSIGN(Buffer b, ctx.device.allocate(uint64_t(1) << 20), "allocate");
  Drain drain{{&s}, nullptr};
  CTS_OK(s.record(e1), "record e1");
  CTS_OK(s.copy(a, 0, b, 0, uint64_t(1) << 20), "copy");
  CTS_OK(s.record(e2), "record e2");
  CTS_OK(s.fill(a, 0, uint64_t(1) << 20, 0, 1), "fill");
  CTS_OK(s.record(e3), "record e3");
  CTS_OK(s.synchronize(), "synchronize");
  CTS_ASSIGN(uint64_t t1, e1.timestamp_ns(), "timestamp e1");
  CTS_ASSIGN(uint64_t t2, e2.timestamp_ns(), "timestamp e2");
  CTS_ASSIGN(uint64_t t3, e3.timestamp_ns(), "timestamp e3");
  CTS_EXPECT(t1 <= t2 && t2 <= t3,
             "timestamps of events recorded in order go backwards: " + std::to_string(t1) + ", " +
                 std::to_string(t2) + ", " + std::to_string(t3));
  CTS_ASSIGN(double elapsed, Event::elapsed_seconds(e1, e3), "elapsed_seconds");
  CTS_EXPECT(
      elapsed >= 0 && std::abs(elapsed - double(t3 - t1) * 1e-9) <= 1e-9,
      "elapsed_seconds(e1, e3) = " + std::to_string(elapsed) + " disagrees with the timestamps");
  return pass();
}

Verdict event_pending(Context& ctx) {
  auto gate = std::make_shared<Gate>();
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Event e, ctx.device.create_event(), "create event");
  Drain drain{{&s}, gate};
  Status st = enqueue_gate(s, gate);
  if (is_unimplemented(st)) return skip("the plugin has no host functions: " + st.message());
  CTS_OK(st, "enqueue host function");
  CTS_OK(s.record(e), "record");
  CTS_ASSIGN(bool done, e.query(), "query");
  CTS_EXPECT(!done, "an event recorded behind blocked work reports complete");
  Result<uint64_t> ts = e.timestamp_ns();
  CTS_EXPECT(!ts.ok() && ts.status().code() == StatusCode::kFailedPrecondition,
             "timestamp of a pending event must fail with failed precondition, got " +
                 (ts.ok() ? std::string("a timestamp") : ts.status().to_string()));
  gate->release();
  CTS_OK(e.synchronize(), "event synchronize");
  CTS_ASSIGN(bool after, e.query(), "query");
  CTS_EXPECT(after, "query() is false after synchronize()");
  return pass();
}

Verdict event_rerecord(Context& ctx) {
  auto gate = std::make_shared<Gate>();
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Event e, ctx.device.create_event(), "create event");
  Drain drain{{&s}, gate};
  CTS_OK(s.record(e), "first record");
  CTS_OK(e.synchronize(), "synchronize the first record");
  Status st = enqueue_gate(s, gate);
  if (is_unimplemented(st)) return skip("the plugin has no host functions: " + st.message());
  CTS_OK(st, "enqueue host function");
  CTS_OK(s.record(e), "second record");
  CTS_ASSIGN(bool done, e.query(), "query");
  CTS_EXPECT(!done,
             "re-recording did not reset the event: it reports complete while its new "
             "record waits behind blocked work");
  gate->release();
  CTS_OK(e.synchronize(), "synchronize the second record");
  return pass();
}

// Stream `waiter` (on any device) waits for an event recorded on `producer` behind a
// closed gate; a host function after the wait must run only after the gate opened.
Verdict wait_across(Stream& producer, Device& producer_device, Stream& waiter,
                    const std::string& what, double probe_s) {
  auto gate = std::make_shared<Gate>();
  CTS_ASSIGN(Event e, producer_device.create_event(), "create event");
  CTS_ASSIGN(Event marker_done, waiter.device().create_event(), "create event");
  Drain drain{{&producer, &waiter}, gate};
  Status st = enqueue_gate(producer, gate);
  if (is_unimplemented(st))
    return skip(producer_device.id() +
                " has no host functions to hold its stream: " + st.message());
  CTS_OK(st, "enqueue host function");
  CTS_OK(producer.record(e), "record on " + producer_device.id());
  CTS_OK(waiter.wait(e), what + ": wait");
  auto saw_open = std::make_shared<std::atomic<int>>(-1);
  st = waiter.enqueue_host_func([gate, saw_open] { *saw_open = gate->is_open() ? 1 : 0; });
  if (is_unimplemented(st))
    return skip(waiter.device().id() + " has no host functions: " + st.message());
  CTS_OK(st, "enqueue host function");
  CTS_OK(waiter.record(marker_done), "record");
  CTS_EXPECT(!completes_within(marker_done, probe_s),
             what + ": work after the wait ran while the event was still pending");
  gate->release();
  CTS_OK(waiter.synchronize(), what + ": synchronize the waiting stream");
  CTS_OK(producer.synchronize(), "synchronize the producing stream");
  CTS_EXPECT(*saw_open == 1, what + ": work after the wait ran before the event completed");
  return pass();
}

// Without host functions: the waiting stream copies what the producing stream wrote.
Verdict wait_by_data(Context& ctx, Stream& producer, Stream& waiter, const std::string& what) {
  const uint64_t size = uint64_t(8) << 20;
  auto rng = ctx.rng("event.wait_by_data");
  const std::vector<uint8_t> data = random_bytes(rng, size);
  std::vector<uint8_t> back(size, 0);
  CTS_ASSIGN(Buffer a, ctx.device.allocate(size), "allocate");
  CTS_ASSIGN(Event e, ctx.device.create_event(), "create event");
  Drain drain{{&producer, &waiter}, nullptr};
  CTS_OK(producer.copy_from_host(data.data(), a, 0, size), "copy");
  CTS_OK(producer.record(e), "record");
  CTS_OK(waiter.wait(e), what + ": wait");
  CTS_OK(waiter.copy_to_host(a, 0, back.data(), size), "copy");
  CTS_OK(waiter.synchronize(), "synchronize");
  CTS_OK(producer.synchronize(), "synchronize");
  CTS_EXPECT(back == data,
             what + ": the waiting stream read data the producer had not written yet");
  return pass("checked by data only (no host functions to hold a stream)");
}

Verdict event_cross_stream(Context& ctx) {
  CTS_ASSIGN(Stream s1, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Stream s2, ctx.device.create_stream(), "create stream");
  Verdict v = wait_across(s1, ctx.device, s2, "stream -> stream", ctx.wait_probe_s);
  if (v.outcome == Outcome::kSkip) return wait_by_data(ctx, s1, s2, "stream -> stream");
  return v;
}

Verdict event_cross_device(Context& ctx, Device& other) {
  CTS_ASSIGN(Stream mine, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Stream theirs, other.create_stream(), "create stream on " + other.id());
  Verdict v = wait_across(mine, ctx.device, theirs, ctx.device.id() + " -> " + other.id(),
                          ctx.wait_probe_s);
  if (v.outcome != Outcome::kPass) return v;
  return wait_across(theirs, other, mine, other.id() + " -> " + ctx.device.id(), ctx.wait_probe_s);
}

// ---- record.* ---------------------------------------------------------------------

Verdict record_commands(Context& ctx) {
  CTS_ASSIGN(Stream s, ctx.device.create_stream({.record_commands = true}), "create stream");
  CTS_ASSIGN(Buffer a, ctx.device.allocate(4096), "allocate");
  CTS_ASSIGN(Buffer b, ctx.device.allocate(4096), "allocate");
  std::vector<uint8_t> host(4096, 7);
  OpAttributes attrs;
  attrs.alpha = 2.0f;
  attrs.beta = 1.0f;
  OpDescriptor op(OpKind::kScale, {TensorRef::contiguous(a, DType::kF32, {1024})},
                  TensorRef::contiguous(b, DType::kF32, {1024}), attrs);
  const bool with_op = ctx.device.supports(op.spec());
  Drain drain{{&s}, nullptr};
  CTS_OK(s.copy_from_host(host.data(), a, 0, 4096, 11), "copy");
  CTS_OK(s.fill(b, 0, 4096, 0, 4, 12), "fill");
  if (with_op) CTS_OK(s.dispatch(op, 13), "dispatch scale");
  CTS_OK(s.copy_to_host(b, 0, host.data(), 4096, 14), "copy");
  CTS_OK(s.synchronize(), "synchronize");
  const std::vector<CommandRecord> records = s.take_records();
  std::vector<std::pair<uint64_t, CommandKind>> want = {{11, CommandKind::kCopyHostToDevice},
                                                        {12, CommandKind::kFill}};
  if (with_op) want.push_back({13, CommandKind::kOp});
  want.push_back({14, CommandKind::kCopyDeviceToHost});
  CTS_EXPECT(records.size() == want.size(), "took " + std::to_string(records.size()) +
                                                " records for " + std::to_string(want.size()) +
                                                " commands");
  uint64_t last_end = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const CommandRecord& r = records[i];
    CTS_EXPECT(r.tag == want[i].first, "record " + std::to_string(i) + " has tag " +
                                           std::to_string(r.tag) + ", want " +
                                           std::to_string(want[i].first));
    CTS_EXPECT(r.command == want[i].second, "record of tag " + std::to_string(r.tag) + " is a " +
                                                std::string(command_kind_name(r.command)) +
                                                ", want " +
                                                std::string(command_kind_name(want[i].second)));
    CTS_EXPECT(r.end_ns >= r.start_ns,
               "record of tag " + std::to_string(r.tag) + " ends before it starts");
    CTS_EXPECT(r.end_ns >= last_end, "records of an in-order stream end out of order");
    last_end = r.end_ns;
    if (r.command == CommandKind::kOp) {
      CTS_EXPECT(r.op == OpKind::kScale, "op record names " + std::string(op_kind_name(r.op)));
      const double flops = analytic_cost(op.spec()).flops;
      CTS_EXPECT(std::abs(r.flops - flops) <= 0.01 * flops,
                 "op record has " + std::to_string(r.flops) + " FLOPs; the op has " +
                     std::to_string(flops));
    }
  }
  CTS_EXPECT(s.take_records().empty(), "records were returned twice");
  return with_op ? pass() : pass("no op record checked: the device does not support scale f32");
}

Verdict record_disabled(Context& ctx) {
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Buffer a, ctx.device.allocate(64), "allocate");
  CTS_OK(s.fill(a, 0, 64, 1, 1), "fill");
  CTS_OK(s.synchronize(), "synchronize");
  CTS_EXPECT(s.take_records().empty(), "a stream without record_commands returned records");
  return pass();
}

// ---- error.* ----------------------------------------------------------------------

// `st` must be a failure with `code`.
std::string expect_code(const Status& st, StatusCode code, const std::string& what) {
  if (st.ok()) return what + " succeeded; it must fail with " + std::string(status_code_name(code));
  if (st.code() != code)
    return what + " failed with " + st.to_string() + "; expected " +
           std::string(status_code_name(code));
  return "";
}
#define CTS_EXPECT_CODE(expr, code, what)                         \
  do {                                                            \
    const std::string cts_msg_ = expect_code((expr), code, what); \
    if (!cts_msg_.empty()) return fail(cts_msg_);                 \
  } while (0)

// After a refused call the stream and buffer still work and were not touched.
Verdict still_works(Stream& s, const Buffer& b, uint8_t sentinel) {
  std::vector<uint8_t> got(b.size());
  CTS_OK(download(s, b, 0, got.data(), got.size()), "the stream after a refused call");
  for (size_t i = 0; i < got.size(); ++i)
    CTS_EXPECT(got[i] == sentinel, "a refused call changed byte " + std::to_string(i));
  return pass();
}

Verdict error_copy_bounds(Context& ctx) {
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Buffer a, ctx.device.allocate(100), "allocate");
  CTS_ASSIGN(Buffer b, ctx.device.allocate(100), "allocate");
  std::vector<uint8_t> fill(100, 0x42);
  CTS_OK(upload(s, a, 0, fill.data(), 100), "prepare");
  CTS_OK(upload(s, b, 0, fill.data(), 100), "prepare");
  std::vector<uint8_t> host(200, 1);
  const StatusCode bad = StatusCode::kInvalidArgument;
  CTS_EXPECT_CODE(s.copy_from_host(host.data(), a, 60, 50), bad,
                  "copy of 50 bytes to offset 60 of 100");
  CTS_EXPECT_CODE(s.copy_from_host(host.data(), a, 101, 0), bad, "copy to offset 101 of 100");
  CTS_EXPECT_CODE(s.copy_from_host(host.data(), a, 0, 101), bad, "copy of 101 bytes into 100");
  CTS_EXPECT_CODE(s.copy_to_host(a, 99, host.data(), 2), bad,
                  "copy of 2 bytes from offset 99 of 100");
  CTS_EXPECT_CODE(s.copy(a, 0, b, 50, 51), bad, "device copy overrunning its destination");
  CTS_EXPECT_CODE(s.copy(a, 50, b, 0, 51), bad, "device copy overrunning its source");
  CTS_EXPECT_CODE(s.copy_from_host(host.data(), a, ~uint64_t(0) - 10, 20), bad,
                  "copy whose offset + size overflows 64 bits");
  CTS_EXPECT(host[0] == 1 && host[1] == 1, "a refused copy wrote host memory");
  Verdict v = still_works(s, a, 0x42);
  if (v.outcome != Outcome::kPass) return v;
  return still_works(s, b, 0x42);
}

Verdict error_fill(Context& ctx) {
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Buffer a, ctx.device.allocate(64), "allocate");
  std::vector<uint8_t> fill(64, 0x42);
  CTS_OK(upload(s, a, 0, fill.data(), 64), "prepare");
  const StatusCode bad = StatusCode::kInvalidArgument;
  CTS_EXPECT_CODE(s.fill(a, 60, 8, 0, 4), bad, "fill of 8 bytes at offset 60 of 64");
  CTS_EXPECT_CODE(s.fill(a, 0, 6, 0, 4), bad, "fill of 6 bytes with a 4-byte pattern");
  CTS_EXPECT_CODE(s.fill(a, 0, 6, 0, 3), bad, "fill with a 3-byte pattern");
  CTS_EXPECT_CODE(s.fill(a, 0, 0, 0, 0), bad, "fill with a 0-byte pattern");
  return still_works(s, a, 0x42);
}

Verdict error_op_malformed(Context& ctx) {
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Buffer a, ctx.device.allocate(256), "allocate");
  CTS_ASSIGN(Buffer b, ctx.device.allocate(256), "allocate");
  CTS_ASSIGN(Buffer c, ctx.device.allocate(256), "allocate");
  std::vector<uint8_t> fill(256, 0x42);
  CTS_OK(upload(s, c, 0, fill.data(), 256), "prepare");
  const StatusCode bad = StatusCode::kInvalidArgument;
  // Inner dimensions disagree.
  OpDescriptor matmul(OpKind::kMatmul,
                      {TensorRef::contiguous(a, DType::kF32, {2, 3}),
                       TensorRef::contiguous(b, DType::kF32, {4, 5})},
                      TensorRef::contiguous(c, DType::kF32, {2, 5}));
  CTS_EXPECT(!ctx.device.supports(matmul.spec()), "supports() accepts matmul [2,3] x [4,5]");
  CTS_EXPECT_CODE(s.dispatch(matmul), bad, "matmul [2,3] x [4,5]");
  // Output shape wrong.
  OpDescriptor add(OpKind::kAdd,
                   {TensorRef::contiguous(a, DType::kF32, {4, 4}),
                    TensorRef::contiguous(b, DType::kF32, {4, 4})},
                   TensorRef::contiguous(c, DType::kF32, {4, 5}));
  CTS_EXPECT_CODE(s.dispatch(add), bad, "add [4,4] + [4,4] -> [4,5]");
  // Too few inputs.
  OpDescriptor one_input(OpKind::kAdd, {TensorRef::contiguous(a, DType::kF32, {4})},
                         TensorRef::contiguous(c, DType::kF32, {4}));
  CTS_EXPECT_CODE(s.dispatch(one_input), bad, "add with one input");
  // Unknown op kinds.
  OpDescriptor unknown(OpKind(99), {TensorRef::contiguous(a, DType::kF32, {4})},
                       TensorRef::contiguous(c, DType::kF32, {4}));
  CTS_EXPECT_CODE(s.dispatch(unknown), bad, "op kind 99");
  CTS_EXPECT(!ctx.device.supports(unknown.spec()), "supports() accepts op kind 99");
  OpDescriptor invalid(OpKind::kInvalid, {TensorRef::contiguous(a, DType::kF32, {4})},
                       TensorRef::contiguous(c, DType::kF32, {4}));
  CTS_EXPECT_CODE(s.dispatch(invalid), bad, "op kind 'invalid'");
  // A view reaching past its buffer (only meaningful when the op is supported).
  OpDescriptor overrun(OpKind::kScale, {TensorRef::contiguous(a, DType::kF32, {64}, 4)},
                       TensorRef::contiguous(c, DType::kF32, {64}));
  if (ctx.device.supports(overrun.spec()))
    CTS_EXPECT_CODE(s.dispatch(overrun), bad, "scale of f32[64] at offset 4 of a 256-byte buffer");
  return still_works(s, c, 0x42);
}

Verdict error_op_unsupported(Context& ctx) {
  using D = DType;
  auto t = [](D d, Shape s) { return TensorDesc::contiguous(d, s); };
  // Candidates from least to most likely supported; the first one refused is used.
  std::vector<std::pair<OpKind, std::vector<TensorDesc>>> candidates = {
      {OpKind::kAdd, {t(D::kFP8E5M2, {8}), t(D::kFP8E5M2, {8})}},
      {OpKind::kGelu, {t(D::kFP8E4M3, {8})}},
      {OpKind::kMatmul, {t(D::kFP8E4M3, {4, 4}), t(D::kFP8E4M3, {4, 4})}},
      {OpKind::kSoftmax, {t(D::kF16, {4, 8})}},
      {OpKind::kAttention,
       {t(D::kF32, {1, 2, 2, 8}), t(D::kF32, {1, 2, 2, 8}), t(D::kF32, {1, 2, 2, 8})}},
      {OpKind::kRotary, {t(D::kF32, {2, 2, 8}), t(D::kI32, {2})}},
  };
  for (auto& [kind, inputs] : candidates) {
    CTS_ASSIGN(OpSpec spec, make_spec(kind, {}, inputs), "build spec");
    if (ctx.device.supports(spec)) continue;
    CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
    std::vector<Buffer> buffers;
    OpDescriptor op;
    op.kind = kind;
    op.num_inputs = spec.num_inputs;
    for (int i = 0; i <= spec.num_inputs; ++i) {
      const TensorDesc& d = i < spec.num_inputs ? spec.inputs[i] : spec.output;
      CTS_ASSIGN(Buffer b, ctx.device.allocate(std::max<uint64_t>(d.extent_bytes(), 1)),
                 "allocate");
      buffers.push_back(std::move(b));
    }
    for (int i = 0; i < spec.num_inputs; ++i)
      op.inputs[i] = TensorRef{&buffers[i], 0, spec.inputs[i]};
    op.output = TensorRef{&buffers.back(), 0, spec.output};
    CTS_EXPECT_CODE(s.dispatch(op), StatusCode::kUnimplemented,
                    "dispatch of " + describe(spec) + ", which supports() refuses");
    CTS_OK(s.synchronize(), "synchronize after a refused dispatch");
    return pass("checked with " + describe(spec));
  }
  return skip("the device supports every candidate op (fp8 included), so no refusal to check");
}

Verdict error_op_foreign_buffer(Context& ctx) {
  Device* other =
      !ctx.same_plugin_peers.empty()
          ? ctx.same_plugin_peers.front()
          : (!ctx.other_plugin_devices.empty() ? ctx.other_plugin_devices.front() : nullptr);
  if (!other) return skip("no other device to take a buffer from");
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Buffer mine, ctx.device.allocate(64), "allocate");
  CTS_ASSIGN(Buffer theirs, other->allocate(64), "allocate on " + other->id());
  OpDescriptor op(OpKind::kScale, {TensorRef::contiguous(theirs, DType::kF32, {16})},
                  TensorRef::contiguous(mine, DType::kF32, {16}));
  CTS_EXPECT_CODE(s.dispatch(op), StatusCode::kInvalidArgument,
                  "an op on " + ctx.device.id() + " reading a buffer of " + other->id());
  CTS_EXPECT_CODE(s.fill(theirs, 0, 64, 0, 1), StatusCode::kInvalidArgument,
                  "a fill on " + ctx.device.id() + " of a buffer of " + other->id());
  CTS_OK(s.synchronize(), "synchronize");
  return pass();
}

Verdict error_failed_command_recovery(Context& ctx) {
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Buffer table, ctx.device.allocate(4 * 8 * 4), "allocate");
  CTS_ASSIGN(Buffer ids, ctx.device.allocate(3 * 4), "allocate");
  CTS_ASSIGN(Buffer out, ctx.device.allocate(3 * 8 * 4), "allocate");
  OpDescriptor op(OpKind::kEmbedding,
                  {TensorRef::contiguous(table, DType::kF32, {4, 8}),
                   TensorRef::contiguous(ids, DType::kI32, {3})},
                  TensorRef::contiguous(out, DType::kF32, {3, 8}));
  if (!ctx.device.supports(op.spec()))
    return skip(
        "the device does not support embedding f32 with i32 ids (the case's data-dependent "
        "failure)");
  std::vector<float> table_data(32, 1.0f);
  const int32_t bad_ids[3] = {0, 7, 1};  // 7 is outside [0, 4)
  CTS_OK(upload(s, table, 0, table_data.data(), 128), "prepare table");
  CTS_OK(upload(s, ids, 0, bad_ids, 12), "prepare ids");
  std::vector<uint8_t> after(16, 0xAA);
  std::vector<float> result(24, 0.0f);
  Drain drain{{&s}, nullptr};
  constexpr uint64_t kFailingTag = 41;
  CTS_OK(s.dispatch(op, kFailingTag), "dispatch (the ids are only known to be bad when it runs)");
  CTS_OK(s.copy_to_host(table, 0, after.data(), 16), "enqueue a copy behind the failing op");
  Status st = s.synchronize();
  CTS_EXPECT_CODE(st, StatusCode::kInvalidArgument,
                  "synchronize after an embedding id out of range");
  // The failed command's tag is an optional detail (ABI 1.2); when given it must be right.
  CTS_EXPECT(!st.detail().command_tag || *st.detail().command_tag == kFailingTag,
             "the error names command tag " + std::to_string(st.detail().command_tag.value_or(0)) +
                 " as the failed one; the failing dispatch had tag " + std::to_string(kFailingTag));
  CTS_EXPECT(after[0] == 0xAA,
             "the copy enqueued after the failed command ran; it must be skipped");
  // synchronize() cleared the error: the stream works again.
  const int32_t good_ids[3] = {3, 0, 2};
  CTS_OK(s.copy_from_host(good_ids, ids, 0, 12), "copy after recovery");
  CTS_OK(s.dispatch(op), "dispatch after recovery");
  CTS_OK(s.copy_to_host(out, 0, result.data(), 96), "copy after recovery");
  CTS_OK(s.synchronize(), "synchronize after recovery");
  for (float v : result) CTS_EXPECT(v == 1.0f, "the op after recovery computed a wrong result");
  return pass();
}

}  // namespace

void add_stream_cases(const Context& ctx, std::vector<Case>& cases) {
  auto add = [&](std::string name, CaseFn fn) {
    cases.push_back({std::move(name), std::move(fn)});
  };
  add("stream.ordering.fill_copy_chain", stream_fill_copy_chain);
  add("stream.ordering.host_copy_chain", stream_host_copy_chain);
  add("stream.ordering.threads", stream_threads);
  add("stream.host_func_order", stream_host_func_order);
  add("stream.destroy_waits", stream_destroy_waits);
  add("stream.many_streams", stream_many);

  add("event.never_recorded", event_never_recorded);
  add("event.record_synchronize", event_record_synchronize);
  add("event.timestamps", event_timestamps);
  add("event.pending", event_pending);
  add("event.rerecord", event_rerecord);
  add("event.cross_stream", event_cross_stream);
  if (ctx.same_plugin_peers.empty())
    add("event.cross_device", [](Context&) { return skip("no other device of this plugin"); });
  for (Device* peer : ctx.same_plugin_peers)
    add("event.cross_device." + peer->id(),
        [peer](Context& c) { return event_cross_device(c, *peer); });
  if (ctx.other_plugin_devices.empty())
    add("event.cross_plugin",
        [](Context&) { return skip("no device of another plugin is loaded"); });
  for (Device* other : ctx.other_plugin_devices)
    add("event.cross_plugin." + other->id(),
        [other](Context& c) { return event_cross_device(c, *other); });

  add("record.commands", record_commands);
  add("record.disabled", record_disabled);

  add("error.copy_out_of_bounds", error_copy_bounds);
  add("error.fill", error_fill);
  add("error.op_malformed", error_op_malformed);
  add("error.op_unsupported", error_op_unsupported);
  add("error.op_foreign_buffer", error_op_foreign_buffer);
  add("error.failed_command_recovery", error_failed_command_recovery);
}

}  // namespace hal::cts::detail
