// CTS cases about channels (ABI 1.2, hal/channel.h): a device whose plugin offers them must
// run every collective with the exact results hal/collective.h defines, leave a record of
// each, and end a collective whose peer never comes with an error instead of a hang. A
// device without channels skips these cases with the reason.
//
// Two members: the device and another device of its plugin when there is one (NCCL wants
// one member per GPU), else the device twice on two streams (as the CPU runs ranks).
#include <atomic>
#include <cmath>
#include <cstring>
#include <optional>

#include "cts_internal.h"
#include "hal/channel.h"

namespace hal::cts::detail {

namespace {

// A unique group name per case run, so cases never meet each other's members.
std::string group_name(const char* what) {
  static std::atomic<uint64_t> n{0};
  return std::string("cts.") + what + "." + std::to_string(++n);
}

struct Pair {
  std::vector<Device*> devices;
  std::vector<Channel> channels;
  std::vector<Stream> streams;
};

// The two members, or a skip verdict's reason in `why`.
std::optional<Pair> make_pair(Context& ctx, const char* what, double timeout_s, std::string* why) {
  if (!Channel::available(ctx.device)) {
    *why = ctx.device.id() + "'s plugin offers no channels (ABI 1.2 channel entries)";
    return std::nullopt;
  }
  Pair p;
  p.devices = {&ctx.device, ctx.same_plugin_peers.empty() ? &ctx.device : ctx.same_plugin_peers[0]};
  ChannelOptions o;
  o.group = group_name(what);
  o.timeout_s = timeout_s;
  auto c = Channel::create_group(p.devices, o);
  if (!c.ok()) {
    *why = "no channel over " + p.devices[0]->id() + " and " + p.devices[1]->id() + ": " +
           c.status().to_string();
    if (c.status().code() != StatusCode::kUnimplemented) *why = "FAIL " + *why;
    return std::nullopt;
  }
  p.channels = std::move(*c);
  for (Device* d : p.devices) {
    auto s = d->create_stream({.record_commands = true});
    if (!s.ok()) {
      *why = "FAIL create stream: " + s.status().to_string();
      return std::nullopt;
    }
    p.streams.push_back(std::move(*s));
  }
  return p;
}

Verdict no_pair(const std::string& why) {
  return why.rfind("FAIL ", 0) == 0 ? fail(why.substr(5)) : skip(why);
}

// Every kind on f32 data of an odd length: results against the definition, and records.
Verdict channel_collectives(Context& ctx) {
  std::string why;
  auto pair = make_pair(ctx, "collectives", 0, &why);
  if (!pair) return no_pair(why);
  Pair& p = *pair;
  const uint64_t n = 1031;
  auto rng = ctx.rng("channel.collectives");
  std::uniform_int_distribution<int> small(-64, 64);  // sums of these are exact in f32
  std::vector<std::vector<float>> in(2, std::vector<float>(2 * n));
  for (auto& v : in)
    for (float& x : v) x = float(small(rng)) / 4.0f;
  std::vector<Buffer> send, recv;
  for (int r = 0; r < 2; ++r) {
    CTS_ASSIGN(Buffer s, p.devices[r]->allocate(2 * n * 4), "allocate send");
    CTS_ASSIGN(Buffer d, p.devices[r]->allocate(2 * n * 4), "allocate recv");
    send.push_back(std::move(s));
    recv.push_back(std::move(d));
    CTS_OK(upload(p.streams[size_t(r)], send.back(), 0, in[size_t(r)].data(), 2 * n * 4), "upload");
  }
  Drain drain{{&p.streams[0], &p.streams[1]}, nullptr};
  auto run = [&](CollectiveKind kind, uint64_t count) -> Status {
    for (int r = 0; r < 2; ++r) {
      Collective c;
      c.shape = {kind, Reduction::kSum, DType::kF32, count,
                 kind == CollectiveKind::kBroadcast ? 1 : 1 - r};
      if (kind == CollectiveKind::kSend && r == 1) c.shape.kind = CollectiveKind::kRecv;
      c.send = &send[size_t(r)];
      c.recv = &recv[size_t(r)];
      if (c.shape.kind == CollectiveKind::kSend) c.recv = nullptr;
      if (c.shape.kind == CollectiveKind::kRecv) c.send = nullptr;
      HAL_RETURN_IF_ERROR(p.streams[size_t(r)].collective(p.channels[size_t(r)], c, 7));
    }
    HAL_RETURN_IF_ERROR(p.streams[0].synchronize());
    return p.streams[1].synchronize();
  };
  auto got = [&](int r, uint64_t count) -> Result<std::vector<float>> {
    std::vector<float> out(count);
    HAL_RETURN_IF_ERROR(download(p.streams[size_t(r)], recv[size_t(r)], 0, out.data(), count * 4));
    return out;
  };
  auto expect = [&](const std::vector<float>& have, auto want,
                    const std::string& what) -> std::string {
    for (size_t i = 0; i < have.size(); ++i)
      if (have[i] != want(i))
        return what + ": element " + std::to_string(i) + " is " + std::to_string(have[i]) +
               ", want " + std::to_string(want(i));
    return "";
  };
  CTS_OK(run(CollectiveKind::kAllReduce, n), "all_reduce");
  for (int r = 0; r < 2; ++r) {
    CTS_ASSIGN(std::vector<float> v, got(r, n), "read back");
    const std::string e = expect(
        v, [&](size_t i) { return in[0][i] + in[1][i]; }, "all_reduce rank " + std::to_string(r));
    CTS_EXPECT(e.empty(), e);
  }
  CTS_OK(run(CollectiveKind::kAllGather, n), "all_gather");
  for (int r = 0; r < 2; ++r) {
    CTS_ASSIGN(std::vector<float> v, got(r, 2 * n), "read back");
    const std::string e = expect(
        v, [&](size_t i) { return in[i / n][i % n]; }, "all_gather rank " + std::to_string(r));
    CTS_EXPECT(e.empty(), e);
  }
  CTS_OK(run(CollectiveKind::kReduceScatter, n), "reduce_scatter");
  for (int r = 0; r < 2; ++r) {
    CTS_ASSIGN(std::vector<float> v, got(r, n), "read back");
    const size_t base = size_t(r) * n;
    const std::string e = expect(
        v, [&](size_t i) { return in[0][base + i] + in[1][base + i]; },
        "reduce_scatter rank " + std::to_string(r));
    CTS_EXPECT(e.empty(), e);
  }
  CTS_OK(run(CollectiveKind::kBroadcast, n), "broadcast from rank 1");
  for (int r = 0; r < 2; ++r) {
    CTS_ASSIGN(std::vector<float> v, got(r, n), "read back");
    const std::string e = expect(
        v, [&](size_t i) { return in[1][i]; }, "broadcast rank " + std::to_string(r));
    CTS_EXPECT(e.empty(), e);
  }
  CTS_OK(run(CollectiveKind::kSend, n), "send from rank 0, recv on rank 1");
  {
    CTS_ASSIGN(std::vector<float> v, got(1, n), "read back");
    const std::string e = expect(
        v, [&](size_t i) { return in[0][i]; }, "recv");
    CTS_EXPECT(e.empty(), e);
  }
  // Every collective left a record naming its channel rank.
  for (int r = 0; r < 2; ++r) {
    int records = 0;
    for (const CommandRecord& rec : p.streams[size_t(r)].take_records()) {
      if (rec.command != CommandKind::kCollective) continue;
      ++records;
      CTS_EXPECT(rec.tag == 7,
                 "a collective's record has tag " + std::to_string(rec.tag) + ", want 7");
      CTS_EXPECT(rec.channel_rank == r && rec.channel_size == 2,
                 "a record says rank " + std::to_string(rec.channel_rank) + " of " +
                     std::to_string(rec.channel_size) + ", want " + std::to_string(r) + " of 2");
    }
    CTS_EXPECT(records == 5, "rank " + std::to_string(r) + " left " + std::to_string(records) +
                                 " collective records for 5 collectives");
  }
  return pass();
}

// A collective whose peer never comes fails by the channel's timeout instead of hanging.
Verdict channel_missing_peer(Context& ctx) {
  std::string why;
  auto pair = make_pair(ctx, "missing_peer", 0.2, &why);
  if (!pair) return no_pair(why);
  Pair& p = *pair;
  CTS_ASSIGN(Buffer b, p.devices[0]->allocate(64), "allocate");
  Drain drain{{&p.streams[0]}, nullptr};
  CTS_OK(all_reduce(p.streams[0], p.channels[0], b, b, 16, DType::kF32), "enqueue all_reduce");
  const Status s = p.streams[0].synchronize();
  CTS_EXPECT(!s.ok(), "an all_reduce whose peer never issued it completed");
  CTS_EXPECT(s.code() == StatusCode::kDeadlineExceeded || s.code() == StatusCode::kAborted ||
                 s.code() == StatusCode::kUnavailable,
             "an all_reduce without its peer failed with " + s.to_string() +
                 " (want DEADLINE_EXCEEDED naming the rank it waited for)");
  return pass();
}

// Bad collectives fail at the call and enqueue nothing.
Verdict channel_bad_calls(Context& ctx) {
  std::string why;
  auto pair = make_pair(ctx, "bad_calls", 0, &why);
  if (!pair) return no_pair(why);
  Pair& p = *pair;
  CTS_ASSIGN(Buffer small, p.devices[0]->allocate(16), "allocate");
  Drain drain{{&p.streams[0]}, nullptr};
  const Status over = all_reduce(p.streams[0], p.channels[0], small, small, 100, DType::kF32);
  CTS_EXPECT(over.code() == StatusCode::kInvalidArgument,
             "an all_reduce overrunning its buffer returned " + over.to_string());
  const Status self = send(p.streams[0], p.channels[0], small, 1, DType::kF32, 0);
  CTS_EXPECT(self.code() == StatusCode::kInvalidArgument,
             "a send to itself returned " + self.to_string());
  CTS_OK(p.streams[0].synchronize(), "the stream after refused calls");
  return pass();
}

}  // namespace

void add_channel_cases(const Context&, std::vector<Case>& cases) {
  cases.push_back({"channel.collectives", channel_collectives});
  cases.push_back({"channel.missing_peer", channel_missing_peer});
  cases.push_back({"channel.bad_calls", channel_bad_calls});
}

}  // namespace hal::cts::detail
