// backends/cuda/cuda_device_info.h: the DeviceInfo of one GPU, from the CUDA runtime
// (cudaGetDeviceProperties and attributes), NVML where present, and a table of per-SM
// throughput by architecture.
//
// How figures are derived (each is also stated in a "source.<field>" property):
// - memory_bandwidth = 2 (DDR) x peak memory clock x bus width / 8: H100 SXM 2619 MHz x
//   5120 bit = 3.35 TB/s, H100 PCIe 2.0 TB/s, H200 4.8 TB/s, as their datasheets say.
// - peak_flops[dtype] = SMs x clock x dense FLOP per clock per SM of the architecture
//   (arch_rates() below). Tensor-core rates use the clock NVIDIA's datasheets use for them:
//   on Hopper 1830/1980 of the maximum boost clock the runtime reports, which gives H100 SXM
//   989 TFLOP/s dense bf16 (132 SMs), H100 PCIe 756 (114 SMs, 1755 MHz) and H200 989.
// - sram_bytes = L2 size; compute_units = SMs; clock_hz = maximum SM clock.
// - links: the host link from NVML's PCIe generation and width (per direction,
//   128b/130b encoded), a peer link per GPU that cudaDeviceCanAccessPeer reaches: NVLink
//   (NVML link count x 25 GB/s per direction for NVLink 3/4) or PCIe peer-to-peer.
//
// Threading: pure functions of their arguments (NVML calls are thread-safe).
#pragma once

#include <cuda_runtime_api.h>

#include <vector>

#include "hal/device_info.h"

namespace hal::cuda {

// Dense FLOP per clock per SM of one architecture (0 = no such unit).
struct ArchRates {
  const char* name = "unknown";
  double fp32 = 0;  // SIMT FMA units (2 FLOP per FMA)
  double tf32 = 0;  // tensor cores
  double fp16 = 0;  // tensor cores (f16 and bf16)
  double bf16 = 0;
  double fp8 = 0;
  double int8 = 0;
  double tensor_clock_ratio = 1.0;  // datasheet tensor clock / maximum boost clock
};
ArchRates arch_rates(int major, int minor);

struct PeerView {
  int ordinal = 0;
  unsigned pci_domain = 0, pci_bus = 0, pci_device = 0;
  bool can_access = false;  // from the described device to this one
};

// `peers` lists the plugin's other GPUs (index in the list = peer_index in links).
DeviceInfo describe_device(int ordinal, const cudaDeviceProp& props,
                           const std::vector<PeerView>& peers, bool tf32);

}  // namespace hal::cuda
