// backends/cuda/cuda_common.h: how the CUDA backend turns CUDA runtime errors into HAL
// statuses, and the per-thread current-device guard every entry point uses.
//
// Error mapping (never abort): out of memory -> kOutOfMemory; faults that leave the CUDA
// context unusable (illegal address, launch failure, an assert or trap in a kernel, a
// hardware exception, an unknown error) -> kDeviceLost; uncorrectable ECC -> kDataLoss;
// no driver / no device / device busy -> kUnavailable; not supported -> kUnimplemented;
// anything else -> kInternal (a bug in the plugin). Messages name the CUDA error
// ("cudaErrorIllegalAddress: an illegal memory access was encountered") and what was
// being done.
//
// Threading: pure functions; DeviceScope changes the calling thread's current device.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <string_view>

#include "hal/status.h"

namespace hal::cuda {

inline StatusCode status_code_of(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return StatusCode::kOk;
    case cudaErrorMemoryAllocation:
      return StatusCode::kOutOfMemory;
    case cudaErrorECCUncorrectable:
      return StatusCode::kDataLoss;
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorUnknown:
    case cudaErrorContextIsDestroyed:
    case cudaErrorDeviceUninitialized:
      return StatusCode::kDeviceLost;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorDevicesUnavailable:
    case cudaErrorSystemNotReady:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorInitializationError:
    case cudaErrorCompatNotSupportedOnDevice:
      return StatusCode::kUnavailable;
    case cudaErrorNotSupported:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
      return StatusCode::kUnimplemented;
    default:
      return StatusCode::kInternal;
  }
}

// True for errors after which the device's context is unusable.
inline bool is_sticky(cudaError_t e) { return status_code_of(e) == StatusCode::kDeviceLost; }

inline std::string cuda_error_text(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

inline Status cuda_status(cudaError_t e, std::string_view what) {
  if (e == cudaSuccess) return ok_status();
  return Status(status_code_of(e), std::string(what) + ": " + cuda_error_text(e));
}

// Makes `ordinal` the calling thread's current device for the scope (the runtime's current
// device is per thread, and any thread may call the plugin).
class DeviceScope {
 public:
  explicit DeviceScope(int ordinal) {
    int current = -1;
    if (cudaGetDevice(&current) == cudaSuccess && current == ordinal) return;
    cudaSetDevice(ordinal);
  }
};

}  // namespace hal::cuda
