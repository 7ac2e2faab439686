// DeviceInfo of a GPU (cuda_device_info.h says how each figure is derived).
#include "cuda_device_info.h"

#include <cstdio>
#include <string>

#include "cuda_nvml.h"
#include "hal/units.h"

namespace hal::cuda {

ArchRates arch_rates(int major, int minor) {
  ArchRates r;
  const int cc = major * 10 + minor;
  if (cc == 70 || cc == 72) {
    r = {"Volta", 128, 0, 1024, 0, 0, 0, 1.0};
  } else if (cc == 75) {
    r = {"Turing", 128, 0, 1024, 0, 0, 2048, 1.0};
  } else if (cc == 80) {
    // A100: 108 SMs x 1.41 GHz x 2048 = 312 TFLOP/s dense bf16 (datasheet).
    r = {"Ampere (GA100)", 128, 1024, 2048, 2048, 0, 4096, 1.0};
  } else if (cc == 86 || cc == 87) {
    r = {"Ampere (GA10x)", 256, 512, 1024, 1024, 0, 2048, 1.0};
  } else if (cc == 89) {
    r = {"Ada", 256, 512, 1024, 1024, 2048, 2048, 1.0};
  } else if (cc == 90) {
    // H100 SXM: 132 SMs x 1.83 GHz x 4096 = 989.4 TFLOP/s dense bf16; 1.83 GHz is the
    // datasheet's clock for tensor math, 1830/1980 of the 1980 MHz maximum boost clock.
    r = {"Hopper", 256, 2048, 4096, 4096, 8192, 8192, 1830.0 / 1980.0};
  } else if (cc == 100 || cc == 103) {
    r = {"Blackwell (estimate)", 256, 4096, 8192, 8192, 16384, 16384, 1.0};
  } else if (cc >= 110) {
    r = {"newer than Blackwell (FP32 estimate only)", 256, 0, 0, 0, 0, 0, 1.0};
  } else {
    r = {"unknown architecture (FP32 estimate only)", 128, 0, 0, 0, 0, 0, 1.0};
  }
  if (cc == 120 || cc == 121)
    r = {"Blackwell (client, estimate)", 256, 512, 1024, 1024, 2048, 2048, 1.0};
  return r;
}

namespace {

int attribute(cudaDeviceAttr attr, int ordinal) {
  int v = 0;
  if (cudaDeviceGetAttribute(&v, attr, ordinal) != cudaSuccess) return 0;
  return v;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// Per-direction bandwidth of a PCIe link (bytes/s).
double pcie_bandwidth(int generation, int width) {
  double gts = 0, encoding = 128.0 / 130.0;
  switch (generation) {
    case 1:
      gts = 2.5;
      encoding = 0.8;
      break;
    case 2:
      gts = 5.0;
      encoding = 0.8;
      break;
    case 3:
      gts = 8.0;
      break;
    case 4:
      gts = 16.0;
      break;
    case 5:
      gts = 32.0;
      break;
    default:
      gts = 64.0;
      encoding = 242.0 / 256.0;
      break;  // Gen6 FLIT mode
  }
  return gts * 1e9 * encoding * width / 8.0;
}

std::string memory_kind_of(const std::string& name, int cc, int bus_bits) {
  if (bus_bits >= 3072) {
    if (name.find("H200") != std::string::npos || name.find("GH200") != std::string::npos ||
        cc >= 100)
      return "HBM3E";
    if (name.find("HBM3") != std::string::npos) return "HBM3";
    if (cc >= 80) return "HBM2E";
    return "HBM2";
  }
  if (cc >= 100) return "GDDR7";
  if (cc >= 86) return "GDDR6X";
  return "GDDR6";
}

}  // namespace

DeviceInfo describe_device(int ordinal, const cudaDeviceProp& p, const std::vector<PeerView>& peers,
                           bool tf32) {
  DeviceInfo info;
  Nvml& nvml = Nvml::instance();
  char bus_id[32] = {};
  cudaDeviceGetPCIBusId(bus_id, sizeof bus_id, ordinal);
  void* nv = nvml.device_by_bus_id(bus_id);

  info.id_prefix = "cuda";
  info.kind = DeviceKind::kGpu;
  info.vendor = "NVIDIA";
  info.name = p.name;
  if (nv) {
    if (auto n = nvml.name(nv)) info.name = *n;
  }
  const int cc = p.major * 10 + p.minor;
  info.memory_bytes = uint64_t(p.totalGlobalMem);
  info.sram_bytes = uint64_t(p.l2CacheSize);
  info.compute_units = uint32_t(p.multiProcessorCount);
  const double clock_khz = attribute(cudaDevAttrClockRate, ordinal);
  info.clock_hz = clock_khz * 1e3;

  // Memory bandwidth: DDR, so two transfers per memory clock.
  double mem_clock_hz = double(attribute(cudaDevAttrMemoryClockRate, ordinal)) * 1e3;
  std::string mem_clock_source = "cudaDevAttrMemoryClockRate";
  if (mem_clock_hz <= 0 && nv) {
    if (auto c = nvml.max_memory_clock_hz(nv)) {
      mem_clock_hz = *c;
      mem_clock_source = "NVML maximum memory clock";
    }
  }
  info.memory_bandwidth_bytes_per_s = 2.0 * mem_clock_hz * double(p.memoryBusWidth) / 8.0;
  info.memory_kind = memory_kind_of(info.name, cc, p.memoryBusWidth);

  const ArchRates r = arch_rates(p.major, p.minor);
  const double sms = p.multiProcessorCount;
  const double simt_clock = info.clock_hz;
  const double tensor_clock = info.clock_hz * r.tensor_clock_ratio;
  auto set_peak = [&](DType t, double per_clock, double clock) {
    if (per_clock > 0) info.peak_flops[t] = sms * clock * per_clock;
  };
  if (tf32 && r.tf32 > 0)
    set_peak(DType::kF32, r.tf32, tensor_clock);
  else
    set_peak(DType::kF32, r.fp32, simt_clock);
  set_peak(DType::kF16, r.fp16, tensor_clock);
  set_peak(DType::kBF16, r.bf16, tensor_clock);
  set_peak(DType::kFP8E4M3, r.fp8, tensor_clock);
  set_peak(DType::kFP8E5M2, r.fp8, tensor_clock);
  set_peak(DType::kI8, r.int8, tensor_clock);
  // Quantized weights (cuda_quant.cc) are dequantized and multiplied on the FP32 FMA units.
  for (int f = int(DType::kQ8_0); f < kDTypeCount; ++f) set_peak(DType(f), r.fp32, simt_clock);
  // A kernel launch through the HAL: ~2 us of driver submission plus the dispatch path.
  info.launch_overhead_s = 5e-6;

  // Links: the host first, then peers.
  LinkInfo host;
  host.peer = "host";
  host.peer_index = -1;
  std::string host_source;
  std::optional<NvmlPcieLink> pcie = nv ? nvml.max_pcie(nv) : std::nullopt;
  if (pcie) {
    host.kind = "pcie-gen" + std::to_string(pcie->generation) + "-x" + std::to_string(pcie->width);
    host.bandwidth_bytes_per_s = pcie_bandwidth(pcie->generation, pcie->width);
    host_source = "NVML maximum PCIe link generation and width, per direction after encoding";
    if (auto cur = nvml.current_pcie(nv))
      host_source += " (link now trained at gen" + std::to_string(cur->generation) + " x" +
                     std::to_string(cur->width) + ", which idle GPUs lower to save power)";
  } else {
    const int gen = cc >= 90 ? 5 : (cc >= 80 ? 4 : 3);
    host.kind = "pcie-gen" + std::to_string(gen) + "-x16";
    host.bandwidth_bytes_per_s = pcie_bandwidth(gen, 16);
    host_source = "assumed PCIe gen" + std::to_string(gen) +
                  " x16 from the architecture (NVML unavailable: " + nvml.status() + ")";
  }
  host.latency_s = 10e-6;  // a small cudaMemcpyAsync, submission to completion
  info.links.push_back(host);

  std::optional<NvmlNvLink> nvlink = nv ? nvml.nvlink(nv) : std::nullopt;
  std::string peer_source;
  for (size_t i = 0; i < peers.size(); ++i) {
    const PeerView& peer = peers[i];
    if (peer.ordinal == ordinal || !peer.can_access) continue;
    LinkInfo l;
    l.peer_index = int32_t(i);
    int links_to_peer = 0;
    bool switched = false;
    if (nvlink) {
      for (const auto& remote : nvlink->remote) {
        bool is_gpu = false;
        for (const PeerView& q : peers)
          if (remote[0] == q.pci_domain && remote[1] == q.pci_bus && remote[2] == q.pci_device)
            is_gpu = true;
        if (remote[0] == peer.pci_domain && remote[1] == peer.pci_bus &&
            remote[2] == peer.pci_device)
          ++links_to_peer;
        else if (!is_gpu)
          switched = true;  // the far end is an NVSwitch: every peer is reachable through it
      }
      if (switched) links_to_peer = nvlink->active_links;
    }
    if (links_to_peer > 0) {
      l.kind = "nvlink" + std::to_string(nvlink->version > 0 ? nvlink->version : 4);
      l.bandwidth_bytes_per_s = 25e9 * links_to_peer;  // NVLink 3/4: 25 GB/s per direction per link
      l.latency_s = 3e-6;
      peer_source = "NVML NVLink state and remote PCI ids, 25 GB/s per direction per link";
    } else {
      l.kind = "pcie-p2p";
      l.bandwidth_bytes_per_s = host.bandwidth_bytes_per_s;
      l.latency_s = host.latency_s;
      if (peer_source.empty())
        peer_source = "cudaDeviceCanAccessPeer over PCIe (host link figures)";
    }
    info.links.push_back(l);
  }

  auto prop = [&](std::string k, std::string v) {
    info.properties.emplace_back(std::move(k), std::move(v));
  };
  prop("compute_capability", std::to_string(p.major) + "." + std::to_string(p.minor));
  prop("architecture", r.name);
  prop("pci_bus_id", bus_id);
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  prop("cuda_driver_version",
       std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10));
  prop("cuda_runtime_version",
       std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10));
  prop("driver_version", nvml.available() ? nvml.driver_version() : "unknown (NVML unavailable)");
  prop("nvml", nvml.status());
  prop("compute_precision", tf32 ? "tf32" : "fp32");
  if (tf32) prop("cts.tolerance.matmul.f32", "2e-2,2e-2");
  // Quantized prefill products read an f16 copy of the weights (cuda_quant.cc).
  for (int f = int(DType::kQ8_0); f < kDTypeCount; ++f)
    prop("cts.tolerance.matmul." + std::string(dtype_name(DType(f))), "1e-2,1e-2");
  prop("source.name", nv ? "NVML" : "cudaGetDeviceProperties");
  prop("source.memory_bytes", "cudaGetDeviceProperties totalGlobalMem");
  prop("source.memory_bandwidth",
       "2 x " + fixed(mem_clock_hz / 1e6, 0) + " MHz memory clock (" + mem_clock_source + ") x " +
           std::to_string(p.memoryBusWidth) +
           "-bit bus / 8 = " + format_rate(info.memory_bandwidth_bytes_per_s));
  prop("source.memory_kind", "inferred from the bus width, name and architecture");
  prop("source.sram_bytes", "L2 cache size (cudaGetDeviceProperties l2CacheSize)");
  prop("source.compute_units", "streaming multiprocessors (multiProcessorCount)");
  prop("source.clock_hz", "maximum SM clock (cudaDevAttrClockRate)");
  const std::string base = std::to_string(p.multiProcessorCount) + " SMs x ";
  auto flops_source = [&](double per_clock, double clock, const char* unit) {
    return base + fixed(clock / 1e9, 3) + " GHz x " + fixed(per_clock, 0) +
           " dense FLOP/clock/SM (" + r.name + " " + unit + ")";
  };
  prop("source.peak_flops", "computed from the architecture table in cuda_device_info.cc");
  if (tf32 && r.tf32 > 0)
    prop("source.peak_flops.f32",
         flops_source(r.tf32, tensor_clock, "TF32 tensor cores, HAL_CUDA_TF32"));
  else
    prop("source.peak_flops.f32", flops_source(r.fp32, simt_clock, "FP32 FMA units"));
  if (r.bf16 > 0)
    prop("source.peak_flops.bf16", flops_source(r.bf16, tensor_clock, "tensor cores"));
  if (r.fp16 > 0) prop("source.peak_flops.f16", flops_source(r.fp16, tensor_clock, "tensor cores"));
  if (r.fp8 > 0) prop("source.peak_flops.fp8", flops_source(r.fp8, tensor_clock, "tensor cores"));
  if (r.fp32 > 0)
    for (int f = int(DType::kQ8_0); f < kDTypeCount; ++f)
      prop("source.peak_flops." + std::string(dtype_name(DType(f))),
           flops_source(r.fp32, simt_clock, "FP32 FMA units on dequantized weights"));
  if (r.tensor_clock_ratio != 1.0)
    prop("source.tensor_clock",
         "tensor rates at " + fixed(r.tensor_clock_ratio, 4) +
             " x the maximum boost clock, the clock NVIDIA's datasheets use");
  prop("source.launch_overhead", "estimate: CUDA kernel launch and HAL dispatch (~5 us)");
  prop("source.links", host_source + (peer_source.empty() ? "" : "; peers: " + peer_source));
  return info;
}

}  // namespace hal::cuda
