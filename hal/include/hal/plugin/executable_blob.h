// hal/plugin/executable_blob.h (plugin kit): the envelope the adapter puts around a
// serialized executable (ABI 1.2 executable_serialize / executable_deserialize), so
// every plugin made with the kit refuses foreign, stale and modified blobs the same way.
//
// Format (little-endian):
//   "HALEXE01"            8 bytes, magic + format version
//   key length            u32
//   key                   the compatibility key (executable_key below), not NUL-terminated
//   payload length        u64
//   checksum              u64, FNV-1a 64 over the key and the payload
//   payload               the plugin's bytes (ExecutableImpl::serialize)
//
// unwrap_blob() refuses, with FAILED_PRECONDITION naming why: a blob too short or without
// the magic ("not an executable blob"), another key ("compiled for '<key>', this device's
// key is '<key>'": another plugin, plugin version, ABI or device), a length that does not
// match, and a checksum that does not match (the contents were changed or truncated).
// The checksum detects accidental and casual changes; it is not a signature.
//
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "hal/graph_view.h"
#include "hal/plugin_abi.h"
#include "hal/status.h"

namespace hal::plugin {

inline constexpr char kExecutableBlobMagic[8] = {'H', 'A', 'L', 'E', 'X', 'E', '0', '1'};

// "<plugin> <version>; abi <major>.<minor>; device <fingerprint>".
inline std::string executable_key(const std::string& plugin, const std::string& version,
                                  const std::string& device_fingerprint) {
  return plugin + " " + version + "; abi " + std::to_string(HAL_ABI_VERSION_MAJOR) + "." +
         std::to_string(HAL_ABI_VERSION_MINOR) + "; device " + device_fingerprint;
}

inline uint64_t blob_checksum(const std::string& key, std::span<const uint8_t> payload) {
  return fnv1a64(payload.data(), payload.size(), fnv1a64(key.data(), key.size()));
}

inline std::vector<uint8_t> wrap_blob(const std::string& key, std::span<const uint8_t> payload) {
  std::vector<uint8_t> out(sizeof kExecutableBlobMagic + 4 + key.size() + 16 + payload.size());
  uint8_t* p = out.data();
  auto put = [&p](const void* data, size_t n) {
    if (n) std::memcpy(p, data, n);
    p += n;
  };
  const uint32_t key_size = uint32_t(key.size());
  const uint64_t payload_size = payload.size();
  const uint64_t sum = blob_checksum(key, payload);
  put(kExecutableBlobMagic, sizeof kExecutableBlobMagic);
  put(&key_size, 4);
  put(key.data(), key.size());
  put(&payload_size, 8);
  put(&sum, 8);
  put(payload.data(), payload.size());
  return out;
}

// The payload of `blob` when it carries `expected_key` and an intact checksum.
inline Result<std::span<const uint8_t>> unwrap_blob(std::span<const uint8_t> blob,
                                                    const std::string& expected_key) {
  const size_t head = sizeof kExecutableBlobMagic + 4;
  if (blob.size() < head || std::memcmp(blob.data(), kExecutableBlobMagic, 8) != 0)
    return failed_precondition("not an executable blob (no HALEXE01 header)");
  uint32_t key_size = 0;
  std::memcpy(&key_size, blob.data() + 8, 4);
  if (blob.size() - head < uint64_t(key_size) + 16)
    return failed_precondition("executable blob truncated in its header");
  const std::string key(reinterpret_cast<const char*>(blob.data() + head), key_size);
  if (key != expected_key)
    return failed_precondition("executable compiled for '" + key + "', this device's key is '" +
                               expected_key + "'; compile it again");
  uint64_t payload_size = 0, sum = 0;
  std::memcpy(&payload_size, blob.data() + head + key_size, 8);
  std::memcpy(&sum, blob.data() + head + key_size + 8, 8);
  const size_t start = head + key_size + 16;
  if (payload_size != blob.size() - start)
    return failed_precondition("executable blob holds " + std::to_string(blob.size() - start) +
                               " payload bytes, its header says " + std::to_string(payload_size) +
                               " (truncated or extended)");
  const std::span<const uint8_t> payload = blob.subspan(start);
  if (blob_checksum(key, payload) != sum)
    return failed_precondition(
        "executable blob contents do not match its checksum (modified or corrupted); refused");
  return payload;
}

}  // namespace hal::plugin
