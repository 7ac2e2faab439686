// hal/hal.h: the whole public C++ API in one include.
#pragma once

#include "hal/buffer.h"
#include "hal/command_record.h"
#include "hal/device.h"
#include "hal/device_info.h"
#include "hal/dtype.h"
#include "hal/event.h"
#include "hal/file_io.h"
#include "hal/op.h"
#include "hal/op_descriptor.h"
#include "hal/platform.h"
#include "hal/status.h"
#include "hal/stream.h"
