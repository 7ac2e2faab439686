// hal/status.h: how every fallible HAL call reports failure.
//
// Contract
// - Every call that can fail returns `Status` or `Result<T>`; nothing in the HAL
//   throws across its API, and no user input ends in abort().
// - A failed status carries a canonical `StatusCode` and a message that names the
//   device (e.g. "cpu:0") and the request that failed, so a user can act on it.
// - Codes mirror the C ABI's `hal_status_code` one to one (plugin_abi.h), so a
//   plugin's error travels to the user unchanged.
// - Facts a program acts on travel beside the message as a StatusDetail (through the
//   plugin ABI as hal_error_detail): code never parses a message.
//
// Threading: value types; safe to copy and move between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace hal {

enum class StatusCode : int32_t {
  kOk = 0,
  kInvalidArgument = 1,     // the caller asked for something malformed or impossible
  kNotFound = 2,            // unknown device, plugin, tensor, file
  kOutOfMemory = 3,         // an allocation did not fit the device's free memory
  kUnimplemented = 4,       // the device does not implement the request
  kUnavailable = 5,         // the device or a resource is temporarily unusable
  kDeviceLost = 6,          // the device stopped responding; its work is gone
  kFailedPrecondition = 7,  // the request is valid but the object is not in a state for it
  kInternal = 8,            // a bug or broken invariant inside the HAL or a plugin
  kDeadlineExceeded = 9,    // a command did not finish in its allotted time
  kDataLoss = 10,           // memory corruption was detected (e.g. an ECC error)
  kAbiMismatch = 11,        // a plugin was built for an incompatible plugin ABI
  kAborted = 12,            // the work was cancelled because earlier work failed
};

// Short stable name of a code ("invalid argument", "out of memory", ...).
std::string_view status_code_name(StatusCode code);

// Structured facts about a failure, beside its message (which is for people).
struct StatusDetail {
  // The stream command that failed, by the tag its enqueue call gave: set by devices on
  // failures found while running their work (reported by a stream's synchronize()).
  std::optional<uint64_t> command_tag;
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message, StatusDetail detail = {})
      : code_(code), message_(std::move(message)), detail_(detail) {}

  static Status ok_status() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const StatusDetail& detail() const { return detail_; }

  // "out of memory: npu:0: cannot allocate 20.0 GiB (15.7 GiB free of 15.7 GiB)".
  std::string to_string() const;

  // Returns a copy whose message is prefixed by `context` and ": " (detail kept).
  Status with_context(std::string_view context) const;

  // Returns a copy naming the failed stream command by its tag (an ok status stays ok).
  Status with_command_tag(uint64_t tag) const;

  // Explicitly discards a status whose failure the caller can ignore.
  void ignore() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  StatusDetail detail_;
};

inline Status ok_status() { return Status(); }

// Helpers naming the canonical codes.
inline Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status out_of_memory(std::string m) { return {StatusCode::kOutOfMemory, std::move(m)}; }
inline Status unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
inline Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status device_lost(std::string m) { return {StatusCode::kDeviceLost, std::move(m)}; }
inline Status failed_precondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status internal_error(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status deadline_exceeded(std::string m) {
  return {StatusCode::kDeadlineExceeded, std::move(m)};
}
inline Status data_loss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status abi_mismatch(std::string m) { return {StatusCode::kAbiMismatch, std::move(m)}; }
inline Status aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }

// Result<T>: a value or a failed Status (never an ok Status without a value).
template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<T, Status>, "use Status directly");

 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = internal_error("Result constructed from an ok Status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  // Precondition: ok(). Accessing the value of a failed Result is a programming
  // error; it returns a reference to an empty optional's storage otherwise.
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

  T value_or(T fallback) const& { return ok() ? *value_ : std::move(fallback); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace hal

// Propagate a failed Status from an expression returning Status.
#define HAL_RETURN_IF_ERROR(expr)                 \
  do {                                            \
    ::hal::Status hal_status_tmp_ = (expr);       \
    if (!hal_status_tmp_.ok()) return hal_status_tmp_; \
  } while (0)

#define HAL_CONCAT_INNER_(a, b) a##b
#define HAL_CONCAT_(a, b) HAL_CONCAT_INNER_(a, b)

// `HAL_ASSIGN_OR_RETURN(auto x, make_x());` binds the value or returns the error.
#define HAL_ASSIGN_OR_RETURN(lhs, expr) \
  HAL_ASSIGN_OR_RETURN_IMPL_(HAL_CONCAT_(hal_result_tmp_, __LINE__), lhs, expr)
#define HAL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()
