#include "hal/buffer.h"

#include "hal/device.h"
#include "loaded_plugin.h"

namespace hal {

Buffer::~Buffer() { reset(); }

Buffer::Buffer(Buffer&& o) noexcept
    : device_(o.device_), handle_(o.handle_), size_(o.size_), kind_(o.kind_) {
  o.handle_ = nullptr;
  o.device_ = nullptr;
  o.size_ = 0;
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    reset();
    device_ = o.device_;
    handle_ = o.handle_;
    size_ = o.size_;
    kind_ = o.kind_;
    o.handle_ = nullptr;
    o.device_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

void Buffer::reset() {
  if (handle_) device_->plugin().api->buffer_free(handle_);
  handle_ = nullptr;
  size_ = 0;
}

Result<void*> Buffer::map() const {
  if (!handle_) return failed_precondition("map of an empty buffer");
  void* ptr = nullptr;
  const detail::LoadedPlugin& p = device_->plugin();
  HAL_RETURN_IF_ERROR(p.take_error(p.api->buffer_map(handle_, &ptr),
                                   device_->id() + ": map " + std::string(memory_kind_name(kind_)) +
                                       " buffer"));
  return ptr;
}

}  // namespace hal
