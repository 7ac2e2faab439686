// The on-disk cache of compiled executables (compiled_units.h, "Cache").
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "hal/file_io.h"
#include "hal/runtime/compiled_units.h"

namespace hal::runtime {

namespace {

constexpr char kEntryMagic[8] = {'H', 'A', 'L', 'X', 'C', 'A', 'C', '1'};

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

std::string_view cache_outcome_name(CacheOutcome o) {
  switch (o) {
    case CacheOutcome::kCompiled:
      return "compiled";
    case CacheOutcome::kHit:
      return "cache hit";
    case CacheOutcome::kLoaded:
      return "loaded (halctl compile artifact)";
    case CacheOutcome::kRefused:
      return "refused blob, compiled";
  }
  return "unknown";
}

ExecutableCache::ExecutableCache(std::string directory, Mode mode)
    : directory_(directory.empty() ? default_directory() : std::move(directory)), mode_(mode) {}

std::string ExecutableCache::default_directory() {
  if (const char* d = std::getenv("HAL_EXECUTABLE_CACHE"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::string(x) + "/hal/executables";
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::string(h) + "/.cache/hal/executables";
  return ".hal-cache/executables";
}

std::string ExecutableCache::entry_name(const GraphView& view, const std::string& key,
                                        const CompileOptions& options) {
  std::string opts;
  for (const auto& [k, v] : options) opts.append(k).append("=").append(v).append(";");
  return hex64(view.fingerprint()) + "-" + hex64(fnv1a64(key.data(), key.size())) + "-" +
         hex64(fnv1a64(opts.data(), opts.size())) + ".halx";
}

Result<std::vector<uint8_t>> ExecutableCache::read_entry(const std::string& path,
                                                         const GraphView& view,
                                                         const std::string& key) {
  HAL_ASSIGN_OR_RETURN(std::string text, read_regular_file(path, "compiled executable"));
  const size_t head = sizeof kEntryMagic + 8 + 4;
  if (text.size() < head || std::memcmp(text.data(), kEntryMagic, 8) != 0)
    return failed_precondition(path + ": not a compiled executable (no HALXCAC1 header)");
  uint64_t fingerprint = 0;
  uint32_t key_size = 0;
  std::memcpy(&fingerprint, text.data() + 8, 8);
  std::memcpy(&key_size, text.data() + 16, 4);
  if (fingerprint != view.fingerprint())
    return failed_precondition(path + ": compiled for another graph (fingerprint " +
                               hex64(fingerprint) + ", this graph's is " +
                               hex64(view.fingerprint()) + ")");
  if (text.size() - head < key_size) return failed_precondition(path + ": truncated in its header");
  const std::string stored(text.data() + head, key_size);
  if (stored != key)
    return failed_precondition(path + ": compiled for '" + stored + "', this device's key is '" +
                               key + "'");
  return std::vector<uint8_t>(text.begin() + std::ptrdiff_t(head + key_size), text.end());
}

Status ExecutableCache::write_entry(const std::string& path, const GraphView& view,
                                    const std::string& key, std::span<const uint8_t> blob) {
  std::error_code ec;
  const std::filesystem::path p(path);
  std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) return unavailable("cannot create " + p.parent_path().string() + ": " + ec.message());
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    const uint64_t fingerprint = view.fingerprint();
    const uint32_t key_size = uint32_t(key.size());
    f.write(kEntryMagic, 8);
    f.write(reinterpret_cast<const char*>(&fingerprint), 8);
    f.write(reinterpret_cast<const char*>(&key_size), 4);
    f.write(key.data(), std::streamsize(key.size()));
    f.write(reinterpret_cast<const char*>(blob.data()), std::streamsize(blob.size()));
    if (!f) {
      std::filesystem::remove(tmp, ec);
      return unavailable("cannot write " + tmp);
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return unavailable("cannot move the entry to " + path);
  }
  return ok_status();
}

Result<Executable> ExecutableCache::get(Device& device, const GraphView& view,
                                        const CompileOptions& options, CacheOutcome* outcome,
                                        std::string* note, std::string* entry) {
  auto set = [&](CacheOutcome o) {
    if (outcome) *outcome = o;
  };
  auto say = [&](const std::string& s) {
    if (note) *note = s;
  };
  set(CacheOutcome::kCompiled);
  const bool artifacts = mode_ == Mode::kArtifacts;
  auto key = device.executable_key();
  if (!key.ok()) {
    if (artifacts)
      return failed_precondition(device.id() +
                                 " cannot load compiled executables: " + key.status().message());
    return device.compile(view, options);  // not serializable: nothing to cache
  }
  const std::string name = entry_name(view, *key, options);
  if (entry) *entry = name;
  const std::string path = directory_ + "/" + name;
  std::error_code ec;
  if (artifacts && !std::filesystem::exists(path, ec))
    return failed_precondition(
        "no compiled executable " + path + " for this graph on " + device.id() +
        " (compiled for other shapes, devices or options? run halctl compile again)");
  if (std::filesystem::exists(path, ec)) {
    auto blob = read_entry(path, view, *key);
    Status refused = blob.status();
    if (blob.ok()) {
      auto loaded = device.load_executable(*blob, view);
      if (loaded.ok()) {
        set(artifacts ? CacheOutcome::kLoaded : CacheOutcome::kHit);
        return loaded;
      }
      refused = loaded.status();
    }
    if (artifacts)
      return failed_precondition("compiled executable " + path + " refused: " + refused.message());
    set(CacheOutcome::kRefused);
    say("cache entry " + path + " refused (" + refused.message() + "); compiled again");
  }
  HAL_ASSIGN_OR_RETURN(Executable exe, device.compile(view, options));
  auto blob = exe.serialize();
  if (blob.ok()) {
    if (Status w = write_entry(path, view, *key, *blob); !w.ok())
      say("executable cache not written: " + w.message());
  }
  return exe;
}

}  // namespace hal::runtime
