/* hal_npu_sim/npu_sim_ext.h: the counters extension of the npu_sim plugin, beyond the HAL
 * ABI: per-device and per-stream totals of simulated work.
 *
 * A typed extension (plugin_abi.h, EXTENSIONS): the plugin's get_extension entry returns it
 * for HAL_EXTENSION_TYPE_NPU_SIM_COUNTERS; in C++, hal::Device::extension_as<
 * hal_npu_sim_counters_ext>(HAL_EXTENSION_TYPE_NPU_SIM_COUNTERS) on an npu device. The
 * handles passed are the HAL's own (hal::Device::handle(), hal::Stream::handle()) of this
 * plugin's devices and streams.
 *
 * Contract
 * - Both functions fill *out (struct_size set by the caller; fields beyond it are not
 *   written) and return 0, or return -1 when the handle is not a live npu_sim device or
 *   stream (checked before the object is used).
 * - Totals count completed device commands (copies, fills, ops): the sum of their
 *   command records. Device totals attribute peer copies to both ends (bytes read to the
 *   source, bytes written to the destination).
 * - Busy times are engine occupancy in simulated time; now_ns is the latest simulated
 *   completion time on the device (or the stream's clock).
 *
 * Versions: 1 has device_counters and stream_counters. The struct grows append-only;
 * read an entry only when HAL_ABI_HAS_FIELD(hal_npu_sim_counters_ext, entry,
 * header.struct_size) holds.
 *
 * Threading: callable from any thread at any time; values are a consistent snapshot. */
#ifndef HAL_NPU_SIM_EXT_H_
#define HAL_NPU_SIM_EXT_H_

#include <stddef.h>
#include <stdint.h>

#include "hal/plugin_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hal_npu_sim_counters {
  size_t struct_size;
  uint64_t commands; /* copies + fills + ops completed */
  uint64_t ops;      /* ops completed */
  double flops;
  uint64_t dram_bytes_read;
  uint64_t dram_bytes_written;
  uint64_t sram_bytes_read;
  uint64_t sram_bytes_written;
  uint64_t link_bytes;        /* host- and peer-link bytes */
  uint64_t compute_busy_ns;   /* neural engines */
  uint64_t host_link_busy_ns; /* host DMA, both directions (device only) */
  uint64_t peer_link_busy_ns; /* peer DMA out (device only) */
  uint64_t now_ns;
} hal_npu_sim_counters;

#define HAL_NPU_SIM_COUNTERS_EXT_VERSION 1u

typedef int (*hal_npu_sim_device_counters_fn)(hal_device* device, hal_npu_sim_counters* out);
typedef int (*hal_npu_sim_stream_counters_fn)(hal_stream* stream, hal_npu_sim_counters* out);

typedef struct hal_npu_sim_counters_ext {
  hal_extension_header header; /* type HAL_EXTENSION_TYPE_NPU_SIM_COUNTERS */
  hal_npu_sim_device_counters_fn device_counters;
  hal_npu_sim_stream_counters_fn stream_counters;
} hal_npu_sim_counters_ext;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* HAL_NPU_SIM_EXT_H_ */
