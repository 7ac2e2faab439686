// CTS cases about memory: buffers of every kind, allocator statistics, copies in every
// direction and fills.
#include <algorithm>
#include <cstring>

#include "cts_internal.h"

namespace hal::cts::detail {

namespace {

std::string kind_name(MemoryKind k) { return std::string(memory_kind_name(k)); }

// A case that needs memory kind `k`: skipped when the device refused it.
Verdict skip_unless_accepted(const Context& ctx, MemoryKind k) {
  auto it = ctx.refused_kinds.find(k);
  return skip("the device does not accept " + kind_name(k) + " memory (" +
              (it == ctx.refused_kinds.end() ? std::string("untested") : it->second) + ")");
}

// A buffer of `size` bytes whose contents are `sentinel` (written by a copy, so copy
// cases do not depend on fill).
Result<Buffer> make_filled(Device& device, Stream& stream, uint64_t size, uint8_t sentinel,
                           MemoryKind kind = MemoryKind::kDevice) {
  HAL_ASSIGN_OR_RETURN(Buffer b, device.allocate(size, kind));
  std::vector<uint8_t> image(size, sentinel);
  HAL_RETURN_IF_ERROR(upload(stream, b, 0, image.data(), size));
  return b;
}

// Checks the whole of `buffer` against `want`.
Verdict expect_contents(Stream& stream, const Buffer& buffer, const std::vector<uint8_t>& want,
                        const std::string& what) {
  CTS_ASSIGN(std::vector<uint8_t> got, read_all(stream, buffer), what + ": read back");
  CTS_EXPECT(got.size() == want.size(), what + ": size mismatch");
  const std::string diff = compare_bytes(got.data(), want.data(), got.size());
  CTS_EXPECT(diff.empty(), what + ": " + diff);
  return pass();
}

// ---- buffer.* ---------------------------------------------------------------------

Verdict buffer_allocate(Context& ctx, MemoryKind kind) {
  if (!ctx.accepts(kind)) return skip_unless_accepted(ctx, kind);
  for (uint64_t size : {uint64_t(1), uint64_t(4096), uint64_t(1) << 20}) {
    CTS_ASSIGN(Buffer b, ctx.device.allocate(size, kind), "allocate " + std::to_string(size));
    CTS_EXPECT(b.valid(), "allocate returned an empty buffer");
    CTS_EXPECT(b.size() == size,
               "size() is " + std::to_string(b.size()) + ", asked " + std::to_string(size));
    CTS_EXPECT(b.kind() == kind, "kind() is " + kind_name(b.kind()));
    CTS_EXPECT(&b.device() == &ctx.device, "device() is another device");
    Result<void*> p = b.map();
    switch (kind) {
      case MemoryKind::kHostPinned:
      case MemoryKind::kHostVisible:
        // The contract: host memory kinds are host-addressable on every device.
        CTS_EXPECT(p.ok() && *p != nullptr, kind_name(kind) + " memory must map: " +
                                                (p.ok() ? "null pointer" : p.status().to_string()));
        break;
      case MemoryKind::kVirtual:
        CTS_EXPECT(!p.ok() && p.status().code() == StatusCode::kFailedPrecondition,
                   "map of a virtual buffer must fail with failed precondition, got " +
                       (p.ok() ? std::string("a pointer") : p.status().to_string()));
        break;
      case MemoryKind::kDevice:
        CTS_EXPECT(p.ok() || p.status().code() == StatusCode::kFailedPrecondition,
                   "map of device memory must succeed or fail with failed precondition, got " +
                       p.status().to_string());
        break;
    }
  }
  return pass();
}

Verdict buffer_zero_size(Context& ctx) {
  CTS_ASSIGN(Buffer b, ctx.device.allocate(0), "allocate 0 bytes");
  CTS_EXPECT(b.valid() && b.size() == 0, "a zero-byte buffer must be valid with size 0");
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  uint8_t host = 0x5a;
  CTS_OK(s.copy_from_host(&host, b, 0, 0), "copy 0 bytes into a zero-byte buffer");
  CTS_OK(s.copy_to_host(b, 0, &host, 0), "copy 0 bytes out of a zero-byte buffer");
  CTS_OK(s.synchronize(), "synchronize");
  CTS_EXPECT(host == 0x5a, "a zero-byte copy wrote host memory");
  return pass();
}

Verdict buffer_alignment(Context& ctx) {
  {
    // The default alignment is at least 64 bytes (plugin_abi.h).
    CTS_ASSIGN(Buffer b, ctx.device.allocate(100), "allocate 100 bytes");
    Result<void*> p = b.map();
    if (p.ok())
      CTS_EXPECT(reinterpret_cast<uintptr_t>(*p) % 64 == 0,
                 "a buffer with the default alignment maps to an address not aligned to 64 bytes");
  }
  for (uint64_t align : {uint64_t(256), uint64_t(4096)}) {
    CTS_ASSIGN(Buffer b, ctx.device.allocate(100, MemoryKind::kDevice, align),
               "allocate 100 bytes aligned to " + std::to_string(align));
    Result<void*> p = b.map();
    if (p.ok())
      CTS_EXPECT(reinterpret_cast<uintptr_t>(*p) % align == 0,
                 "buffer asked aligned to " + std::to_string(align) + " maps to an address " +
                     "that is not");
  }
  Result<Buffer> bad = ctx.device.allocate(100, MemoryKind::kDevice, 3);
  CTS_EXPECT(!bad.ok() && bad.status().code() == StatusCode::kInvalidArgument,
             "alignment 3 (not a power of two) must fail with invalid argument, got " +
                 (bad.ok() ? std::string("a buffer") : bad.status().to_string()));
  return pass();
}

Verdict buffer_map_roundtrip(Context& ctx, MemoryKind kind) {
  if (!ctx.accepts(kind)) return skip_unless_accepted(ctx, kind);
  CTS_ASSIGN(Buffer b, ctx.device.allocate(4099, kind), "allocate");
  Result<void*> mapped = b.map();
  if (!mapped.ok()) {
    if (kind == MemoryKind::kDevice && mapped.status().code() == StatusCode::kFailedPrecondition)
      return skip("device memory is not host-addressable on this device");
    return fail("map: " + mapped.status().to_string());
  }
  auto rng = ctx.rng("buffer.map");
  const std::vector<uint8_t> data = random_bytes(rng, 4099);
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  // Host writes through the mapping are seen by device copies...
  std::memcpy(*mapped, data.data(), data.size());
  std::vector<uint8_t> back(data.size());
  CTS_OK(download(s, b, 0, back.data(), back.size()), "copy to host");
  CTS_EXPECT(back == data, "a copy did not see bytes written through map(): " +
                               compare_bytes(back.data(), data.data(), data.size()));
  // ...and device copies are seen through the mapping.
  std::vector<uint8_t> other = random_bytes(rng, 4099);
  CTS_OK(upload(s, b, 0, other.data(), other.size()), "copy from host");
  const std::string diff =
      compare_bytes(static_cast<const uint8_t*>(*mapped), other.data(), other.size());
  CTS_EXPECT(diff.empty(), "map() does not show what a copy wrote: " + diff);
  return pass();
}

Verdict buffer_out_of_memory(Context& ctx) {
  CTS_ASSIGN(MemoryStats before, ctx.device.memory_stats(), "memory stats");
  const uint64_t capacity =
      before.capacity_bytes ? before.capacity_bytes : ctx.device.info().memory_bytes;
  if (capacity == 0) return skip("the device reports no memory capacity");
  if (capacity > UINT64_MAX / 2) return skip("the device reports an unbounded capacity");
  Result<Buffer> b = ctx.device.allocate(capacity + 1);
  CTS_EXPECT(!b.ok(),
             "allocating capacity + 1 bytes (" + std::to_string(capacity + 1) + ") succeeded");
  CTS_EXPECT(b.status().code() == StatusCode::kOutOfMemory,
             "allocating more than the capacity must fail with out of memory, got " +
                 b.status().to_string());
  CTS_EXPECT(b.status().message().find(ctx.device.id()) != std::string::npos,
             "the out-of-memory message does not name the device: " + b.status().message());
  CTS_ASSIGN(MemoryStats after, ctx.device.memory_stats(), "memory stats");
  CTS_EXPECT(after.bytes_in_use == before.bytes_in_use &&
                 after.allocation_count == before.allocation_count,
             "a failed allocation changed the statistics");
  // The device still allocates after refusing.
  CTS_ASSIGN(Buffer ok, ctx.device.allocate(4096), "allocate after an out-of-memory failure");
  return pass();
}

// ---- alloc.* ----------------------------------------------------------------------

Verdict alloc_counts(Context& ctx, MemoryKind kind) {
  if (!ctx.accepts(kind)) return skip_unless_accepted(ctx, kind);
  CTS_ASSIGN(MemoryStats base, ctx.device.memory_stats(), "memory stats");
  const uint64_t sizes[] = {1, 64, 1000, uint64_t(1) << 20};
  uint64_t sum = 0;
  {
    std::vector<Buffer> buffers;
    for (uint64_t size : sizes) {
      CTS_ASSIGN(Buffer b, ctx.device.allocate(size, kind), "allocate " + std::to_string(size));
      buffers.push_back(std::move(b));
      sum += size;
    }
    CTS_ASSIGN(MemoryStats mid, ctx.device.memory_stats(), "memory stats");
    CTS_EXPECT(mid.peak_bytes_in_use >= mid.bytes_in_use,
               "peak (" + std::to_string(mid.peak_bytes_in_use) + ") below in use (" +
                   std::to_string(mid.bytes_in_use) + ")");
    CTS_EXPECT(mid.total_allocations >= base.total_allocations, "total_allocations went down");
    if (kind == MemoryKind::kDevice || kind == MemoryKind::kVirtual) {
      // Device memory (real or virtual) is what the statistics are for: exact counts.
      CTS_EXPECT(mid.allocation_count == base.allocation_count + 4,
                 "live allocations " + std::to_string(mid.allocation_count) + ", expected " +
                     std::to_string(base.allocation_count + 4));
      CTS_EXPECT(mid.total_allocations >= base.total_allocations + 4,
                 "total_allocations rose by less than the 4 allocations made");
      CTS_EXPECT(mid.bytes_in_use >= base.bytes_in_use + sum,
                 "bytes in use " + std::to_string(mid.bytes_in_use) + " < " +
                     std::to_string(base.bytes_in_use + sum) + " after allocating " +
                     std::to_string(sum) + " bytes");
    }
    buffers.pop_back();  // free one early: in use drops, peak stays
    CTS_ASSIGN(MemoryStats partial, ctx.device.memory_stats(), "memory stats");
    CTS_EXPECT(partial.bytes_in_use <= mid.bytes_in_use, "freeing a buffer raised bytes in use");
    CTS_EXPECT(partial.peak_bytes_in_use >= mid.bytes_in_use, "peak dropped after a free");
  }
  CTS_ASSIGN(MemoryStats end, ctx.device.memory_stats(), "memory stats");
  CTS_EXPECT(end.bytes_in_use == base.bytes_in_use,
             "bytes in use " + std::to_string(end.bytes_in_use) +
                 " after freeing everything, was " + std::to_string(base.bytes_in_use));
  CTS_EXPECT(end.allocation_count == base.allocation_count,
             "live allocations " + std::to_string(end.allocation_count) +
                 " after freeing everything, was " + std::to_string(base.allocation_count));
  return pass();
}

Verdict alloc_capacity(Context& ctx) {
  CTS_ASSIGN(MemoryStats s, ctx.device.memory_stats(), "memory stats");
  const uint64_t info_bytes = ctx.device.info().memory_bytes;
  CTS_EXPECT(s.capacity_bytes > 0 || info_bytes == 0, "memory_stats reports capacity 0");
  CTS_EXPECT(s.capacity_bytes <= info_bytes || info_bytes == 0,
             "capacity " + std::to_string(s.capacity_bytes) + " exceeds DeviceInfo::memory_bytes " +
                 std::to_string(info_bytes));
  return pass();
}

// ---- copy.* -----------------------------------------------------------------------

// Host -> device at `offset`, then the whole buffer back: written range equals the
// data, the rest keeps its sentinel.
Verdict copy_roundtrip(Context& ctx, uint64_t size, uint64_t offset, MemoryKind kind,
                       bool unaligned_host) {
  if (!ctx.accepts(kind)) return skip_unless_accepted(ctx, kind);
  const uint64_t total = offset + size + 61;
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Buffer b, make_filled(ctx.device, s, total, 0xA5, kind), "prepare buffer");
  auto rng = ctx.rng("copy" + std::to_string(size) + "/" + std::to_string(offset));
  std::vector<uint8_t> host = random_bytes(rng, size + 1);
  const uint8_t* src = host.data() + (unaligned_host ? 1 : 0);
  Drain drain{{&s}, nullptr};
  CTS_OK(s.copy_from_host(src, b, offset, size), "copy host to device");
  std::vector<uint8_t> want(total, 0xA5);
  std::memcpy(want.data() + offset, src, size);
  Verdict v = expect_contents(s, b, want, "after the host-to-device copy");
  if (v.outcome != Outcome::kPass) return v;
  // Device -> host of just the range, into an unaligned host destination.
  std::vector<uint8_t> back(size + 2, 0x3c);
  CTS_OK(download(s, b, offset, back.data() + 1, size), "copy device to host");
  CTS_EXPECT(back[0] == 0x3c && back[size + 1] == 0x3c,
             "the device-to-host copy wrote outside its host range");
  const std::string diff = compare_bytes(back.data() + 1, src, size);
  CTS_EXPECT(diff.empty(), "device-to-host copy: " + diff);
  return pass();
}

// Within the device (or between two memory kinds of it): src at src_off -> dst at dst_off.
Verdict copy_device_to_device(Context& ctx, uint64_t size, uint64_t src_off, uint64_t dst_off,
                              MemoryKind src_kind, MemoryKind dst_kind) {
  if (!ctx.accepts(src_kind)) return skip_unless_accepted(ctx, src_kind);
  if (!ctx.accepts(dst_kind)) return skip_unless_accepted(ctx, dst_kind);
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  auto rng = ctx.rng("d2d" + std::to_string(size));
  const std::vector<uint8_t> data = random_bytes(rng, src_off + size);
  CTS_ASSIGN(Buffer src, ctx.device.allocate(src_off + size, src_kind), "allocate source");
  CTS_OK(upload(s, src, 0, data.data(), data.size()), "fill source");
  CTS_ASSIGN(Buffer dst, make_filled(ctx.device, s, dst_off + size + 13, 0x5a, dst_kind),
             "prepare destination");
  Drain drain{{&s}, nullptr};
  CTS_OK(s.copy(src, src_off, dst, dst_off, size), "copy device to device");
  std::vector<uint8_t> want(dst_off + size + 13, 0x5a);
  std::memcpy(want.data() + dst_off, data.data() + src_off, size);
  return expect_contents(s, dst, want, "after the device-to-device copy");
}

// To and from `peer` (another device): a peer copy within one plugin, staged through
// the host across plugins. Enqueued on the device under test's stream both ways.
Verdict copy_with_peer(Context& ctx, Device& peer) {
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Stream ps, peer.create_stream(), "create stream on " + peer.id());
  auto rng = ctx.rng("peer" + peer.id());
  const uint64_t size = 65536 + 3;
  const std::vector<uint8_t> data = random_bytes(rng, size);
  CTS_ASSIGN(Buffer mine, ctx.device.allocate(size + 7), "allocate");
  CTS_OK(upload(s, mine, 7, data.data(), size), "fill source");
  CTS_ASSIGN(Buffer theirs, make_filled(peer, ps, size + 20, 0x11),
             "prepare buffer on " + peer.id());
  CTS_ASSIGN(Buffer back, make_filled(ctx.device, s, size, 0x22), "prepare buffer");
  Drain drain{{&s, &ps}, nullptr};
  // To the peer, then back into a second buffer of ours.
  if (Status st = s.copy(mine, 7, theirs, 9, size); !st.ok()) {
    // Staging across plugins runs in stream order through a host function, an optional
    // entry of the ABI; without it such copies are refused, which is conformant.
    if (st.code() == StatusCode::kUnimplemented && peer.info().backend != ctx.device.info().backend)
      return skip("copies to another plugin's device need host functions: " + st.message());
    return fail("copy " + ctx.device.id() + " -> " + peer.id() + ": " + st.to_string());
  }
  CTS_OK(s.copy(theirs, 9, back, 0, size), "copy " + peer.id() + " -> " + ctx.device.id());
  CTS_OK(s.synchronize(), "synchronize");
  std::vector<uint8_t> want(size + 20, 0x11);
  std::memcpy(want.data() + 9, data.data(), size);
  Verdict v = expect_contents(ps, theirs, want, "on " + peer.id());
  if (v.outcome != Outcome::kPass) return v;
  return expect_contents(s, back, data, "after the round trip through " + peer.id());
}

Verdict copy_zero_sizes(Context& ctx) {
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  CTS_ASSIGN(Buffer a, make_filled(ctx.device, s, 64, 0x77), "prepare buffer");
  CTS_ASSIGN(Buffer b, make_filled(ctx.device, s, 64, 0x66), "prepare buffer");
  uint8_t host[4] = {1, 2, 3, 4};
  Drain drain{{&s}, nullptr};
  // Zero bytes at every offset up to and including the end are valid and do nothing.
  for (uint64_t off : {uint64_t(0), uint64_t(13), uint64_t(64)}) {
    CTS_OK(s.copy_from_host(host, a, off, 0), "copy 0 bytes host -> offset " + std::to_string(off));
    CTS_OK(s.copy_to_host(a, off, host, 0),
           "copy 0 bytes offset " + std::to_string(off) + " -> host");
    CTS_OK(s.copy(a, off, b, off, 0), "copy 0 bytes device -> device at " + std::to_string(off));
  }
  CTS_OK(s.synchronize(), "synchronize");
  CTS_EXPECT(host[0] == 1 && host[3] == 4, "a zero-byte copy wrote host memory");
  Verdict v = expect_contents(s, a, std::vector<uint8_t>(64, 0x77), "buffer a");
  if (v.outcome != Outcome::kPass) return v;
  return expect_contents(s, b, std::vector<uint8_t>(64, 0x66), "buffer b");
}

// ---- fill.* -----------------------------------------------------------------------

Verdict fill_pattern(Context& ctx, uint32_t pattern_size, uint64_t offset, uint64_t count) {
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  const uint64_t size = count * pattern_size;
  const uint64_t total = offset + size + 11;
  CTS_ASSIGN(Buffer b, make_filled(ctx.device, s, total, 0xEE), "prepare buffer");
  const uint64_t pattern = 0x0807060504030201ull ^ (uint64_t(pattern_size) << 56);
  CTS_OK(s.fill(b, offset, size, pattern, pattern_size), "fill");
  std::vector<uint8_t> want(total, 0xEE);
  for (uint64_t i = 0; i < size; ++i)
    want[offset + i] = uint8_t(pattern >> (8 * (i % pattern_size)));
  return expect_contents(s, b, want, "after the fill");
}

}  // namespace

void add_memory_cases(const Context& ctx, std::vector<Case>& cases) {
  auto add = [&](std::string name, CaseFn fn) {
    cases.push_back({std::move(name), std::move(fn)});
  };
  const MemoryKind kinds[] = {MemoryKind::kDevice, MemoryKind::kHostPinned,
                              MemoryKind::kHostVisible, MemoryKind::kVirtual};
  for (MemoryKind k : kinds)
    add("buffer.allocate." + kind_name(k), [k](Context& c) { return buffer_allocate(c, k); });
  add("buffer.zero_size", buffer_zero_size);
  add("buffer.alignment", buffer_alignment);
  for (MemoryKind k : {MemoryKind::kDevice, MemoryKind::kHostPinned, MemoryKind::kHostVisible})
    add("buffer.map_roundtrip." + kind_name(k),
        [k](Context& c) { return buffer_map_roundtrip(c, k); });
  add("buffer.out_of_memory", buffer_out_of_memory);

  for (MemoryKind k : kinds)
    add("alloc.stats." + kind_name(k), [k](Context& c) { return alloc_counts(c, k); });
  add("alloc.capacity", alloc_capacity);

  const uint64_t sizes[] = {0, 1, 3, 64, 4097, 65536 + 13, uint64_t(1) << 20};
  for (uint64_t size : sizes)
    for (uint64_t off : {uint64_t(0), uint64_t(3)})
      add("copy.h2d_d2h.size_" + std::to_string(size) + ".offset_" + std::to_string(off),
          [=](Context& c) { return copy_roundtrip(c, size, off, MemoryKind::kDevice, false); });
  add("copy.h2d_d2h.unaligned_host_pointer",
      [](Context& c) { return copy_roundtrip(c, 1000, 5, MemoryKind::kDevice, true); });
  for (MemoryKind k : {MemoryKind::kHostPinned, MemoryKind::kHostVisible})
    add("copy.h2d_d2h." + kind_name(k),
        [k](Context& c) { return copy_roundtrip(c, 4097, 3, k, false); });
  for (uint64_t size : {uint64_t(1), uint64_t(4097), uint64_t(1) << 20})
    add("copy.d2d.size_" + std::to_string(size) + ".src_offset_5.dst_offset_3", [size](Context& c) {
      return copy_device_to_device(c, size, 5, 3, MemoryKind::kDevice, MemoryKind::kDevice);
    });
  add("copy.d2d.device_to_host_visible", [](Context& c) {
    return copy_device_to_device(c, 4099, 1, 2, MemoryKind::kDevice, MemoryKind::kHostVisible);
  });
  add("copy.d2d.host_pinned_to_device", [](Context& c) {
    return copy_device_to_device(c, 4099, 2, 1, MemoryKind::kHostPinned, MemoryKind::kDevice);
  });
  add("copy.zero_size", copy_zero_sizes);
  if (ctx.same_plugin_peers.empty()) {
    add("copy.peer", [](Context&) { return skip("no other device of this plugin to copy to"); });
  }
  for (Device* peer : ctx.same_plugin_peers)
    add("copy.peer." + peer->id(), [peer](Context& c) { return copy_with_peer(c, *peer); });
  if (ctx.other_plugin_devices.empty()) {
    add("copy.cross_plugin",
        [](Context&) { return skip("no device of another plugin is loaded to copy to"); });
  }
  for (Device* other : ctx.other_plugin_devices)
    add("copy.cross_plugin." + other->id(),
        [other](Context& c) { return copy_with_peer(c, *other); });

  for (uint32_t ps : {1u, 2u, 4u, 8u}) {
    const std::string p = "fill.pattern_" + std::to_string(ps);
    add(p + ".aligned", [ps](Context& c) { return fill_pattern(c, ps, 0, 1031); });
    add(p + ".offset_3", [ps](Context& c) { return fill_pattern(c, ps, 3, 517); });
    add(p + ".one", [ps](Context& c) { return fill_pattern(c, ps, ps, 1); });
    add(p + ".empty", [ps](Context& c) { return fill_pattern(c, ps, 5, 0); });
  }
  add("fill.large", [](Context& c) { return fill_pattern(c, 4, 64, (uint64_t(1) << 20) / 4); });
}

}  // namespace hal::cts::detail
