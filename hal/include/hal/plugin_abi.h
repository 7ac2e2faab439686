/* hal/plugin_abi.h: the plain-C contract between the HAL host and a backend plugin.
 *
 * A plugin is a shared library exporting one symbol, HAL_PLUGIN_ENTRY_POINT
 * ("hal_plugin_get_api"), of type hal_plugin_get_api_fn. The host calls it once after
 * dlopen() and receives a table of function pointers (hal_plugin_api). Everything the
 * host and plugin exchange goes through that table; no C++ type crosses it.
 * (One header over the project's ~800 lines by design: the whole C contract a plugin
 * compiles against, in one file, as PJRT's pjrt_c_api.h.)
 *
 * ---------------------------------------------------------------------------------
 * VERSIONING POLICY (ABI semantic version MAJOR.MINOR)
 * ---------------------------------------------------------------------------------
 * - MAJOR changes only when an existing entry or field changes meaning, type or
 *   position. A host refuses a plugin whose major differs from its own, with a
 *   message naming both versions.
 * - MINOR grows when entries are appended to hal_plugin_api or fields appended to an
 *   argument struct. Nothing is ever removed or reordered within a major version.
 * - Every table and argument struct starts with `size_t struct_size`, set by whoever
 *   fills it to sizeof() of the struct *as that side knows it*. A reader must only
 *   touch fields that lie entirely within struct_size; fields beyond it take their
 *   documented default (HAL_ABI_HAS_FIELD tests this).
 * - Therefore a host accepts a plugin of an older minor (its table is shorter: the
 *   missing entries are treated as absent optional entries) and a plugin of a newer
 *   minor (the host ignores entries it does not know). Same for argument structs
 *   passed the other way.
 * - Each entry below is marked REQUIRED or OPTIONAL. A plugin leaving a REQUIRED
 *   entry NULL is refused at load with a message naming the entry. An OPTIONAL entry
 *   may be NULL; its documented default behaviour applies.
 * - Arrays of structs passed across the boundary carry their element size next to
 *   the pointer (e.g. hal_op_desc.tensor_size) so elements may also grow. (hal_device_info's
 *   arrays gained theirs in 1.2; absent means the 1.0 element layout.)
 *
 * History (one line per addition, under the minor that added it; append, never edit):
 *   1.0  the initial table and structs.
 *   1.1  hal_plugin_api.device_get_telemetry (OPTIONAL) and hal_telemetry.
 *   1.2  hal_plugin_api.error_get_detail (OPTIONAL) and hal_error_detail: structured facts
 *        about an error, first the tag of the stream command that failed.
 *   1.2  hal_plugin_api.get_extension (OPTIONAL) and hal_extension_header: typed,
 *        versioned extensions looked up by type id (EXTENSIONS below).
 *   1.2  the quantized weight dtypes HAL_DTYPE_Q8_0 .. HAL_DTYPE_FP8E4M3_CHANNEL (layouts
 *        in hal/op.h), OPTIONAL for plugins: one that does not know them answers
 *        device_supports_op "unsupported" (an error reads the same) and never receives
 *        them; a device that runs a format says so there and lists its peak in
 *        hal_device_info.peak_flops under that dtype (weight MACs counted as 2 FLOPs).
 *   1.2  hal_plugin_api.channel_create, channel_destroy and stream_collective (OPTIONAL, as a
 *        set) and channel_abort (OPTIONAL): channels and their collectives as stream
 *        commands (CHANNELS below); hal_channel, hal_channel_create_args,
 *        hal_collective_args, hal_transport, hal_transport_exchange_args; the
 *        hal_collective_kind, hal_reduction, hal_link_class and hal_collective_algorithm
 *        enums; HAL_COMMAND_COLLECTIVE.
 *   1.2  hal_command_record.collective, channel_rank, channel_size, peer_rank,
 *        link_bytes_received, link_class and algorithm (collectives' records).
 *   1.2  executables (EXECUTABLES below): hal_graph_view (+ hal_graph_value, hal_graph_node,
 *        hal_graph_symbol); hal_plugin_api.device_partition, executable_compile,
 *        executable_destroy, executable_get_info, stream_execute (OPTIONAL as a set: all
 *        or none), executable_serialize, executable_deserialize,
 *        device_get_executable_key (OPTIONAL as a set); HAL_COMMAND_EXECUTE and
 *        HAL_COMMAND_EXECUTE_GROUP records with hal_command_record.group and .node
 *        appended; hal_error_detail.node and .group appended (HAL_ERROR_DETAIL_NODE,
 *        HAL_ERROR_DETAIL_GROUP); hal_device_info.peak_flops_size, link_size and
 *        property_size appended (element sizes of its arrays).
 * A table's size for each minor is HAL_PLUGIN_API_SIZE_1_<minor> (the offset of the first
 * entry the next minor appended); a new minor adds its entries at the end of the table,
 * its line(s) above, and the size macro of the minor before it.
 *
 * ---------------------------------------------------------------------------------
 * OWNERSHIP AND LIFETIME
 * ---------------------------------------------------------------------------------
 * - Functions return hal_error* : NULL on success, otherwise an error object owned by
 *   the caller, released with api->error_destroy(). Plugins never abort() on bad
 *   input; they return HAL_STATUS_INVALID_ARGUMENT etc.
 * - Handles (hal_plugin, hal_device, hal_buffer, hal_stream, hal_event, hal_channel) are
 *   opaque and owned by the plugin. Devices live as long as the hal_plugin; buffers, streams and
 *   events live until their *_destroy/free entry is called. The host destroys all
 *   streams, events and buffers before plugin_destroy().
 * - Strings returned by the plugin (names, info strings) stay valid until
 *   plugin_destroy(). Strings passed by the host are valid for the duration of the call.
 * - Host memory named in an asynchronous copy must stay valid until the copy
 *   completes (observe with an event or stream_synchronize).
 *
 * ---------------------------------------------------------------------------------
 * THREADING
 * ---------------------------------------------------------------------------------
 * Every entry may be called from any thread. Calls on different handles may run
 * concurrently. Enqueue calls on the same stream from several threads are
 * serialised by the plugin in some order; each call's work runs in the order its
 * call returned. Host functions (stream_enqueue_host_func) run on a plugin thread and
 * may block; they must not call back into the same stream.
 *
 * ---------------------------------------------------------------------------------
 * EXTENSIONS (1.2)
 * ---------------------------------------------------------------------------------
 * Entry points beyond this table (a simulator's counters, a vendor's profiler) are
 * extensions, found as PJRT finds its extensions: get_extension(plugin, type id) returns
 * a struct of static storage that starts with a hal_extension_header naming its type id,
 * its own version and its size, followed by the extension's function pointers. Each
 * extension grows append-only like this table (readers check HAL_ABI_HAS_FIELD against
 * header.struct_size). Type ids below 0x80000000 are assigned here
 * (HAL_EXTENSION_TYPE_*); ids from 0x80000000 up are free for private use. Handles
 * passed to an extension's functions must belong to the plugin that returned it.
 *
 * ---------------------------------------------------------------------------------
 * CHANNELS (1.2): collectives as stream commands
 * ---------------------------------------------------------------------------------
 * A channel is one device's member of a communicator of `size` members (ranks 0..size-1),
 * as an ncclComm_t or IREE's hal_channel is. Its collectives (all-reduce, all-gather,
 * reduce-scatter, broadcast, send/recv; exact semantics in hal/collective.h) are enqueued
 * on a stream of the member's device like any command, run in stream order, and leave a
 * hal_command_record (HAL_COMMAND_COLLECTIVE) with the bytes this member sent and received
 * over which class of link.
 * - Members in one process and one plugin find each other by `group` name. Members in
 *   other processes are reached through a hal_transport the host supplies (the HAL's MPI
 *   bootstrap, for one; a plugin never links MPI): then there is one member per process
 *   and rank/size are the transport's.
 * - A collective that waits longer than the channel's timeout for its peers fails with
 *   HAL_STATUS_DEADLINE_EXCEEDED naming the ranks it waited for; after a failure or
 *   channel_abort the channel is broken and every later collective on any member fails
 *   at once (HAL_STATUS_ABORTED) naming the first failure. Nothing waits forever.
 * - A plugin offers channels by setting channel_create, channel_destroy and
 *   stream_collective together (channel_abort is OPTIONAL). A plugin without them (every
 *   1.0/1.1 plugin) keeps working; the host then refuses channels on its devices with
 *   HAL_STATUS_UNIMPLEMENTED, and the runtime reports that tensor and pipeline parallelism
 *   over them are unavailable.
 * ---------------------------------------------------------------------------------
 * EXECUTABLES (1.2): whole-graph offload
 * ---------------------------------------------------------------------------------
 * Op-by-op dispatch (stream_dispatch) is the floor every plugin speaks. A plugin with a
 * compiler also takes whole subgraphs, as PJRT_Client_Compile, ONNX Runtime's
 * GetCapability + Compile and ggml's graph_compute do:
 * 1. The host describes a graph as a hal_graph_view: values (dtype, shape, strides; graph
 *    inputs, constant weights, states written in place such as KV caches, and
 *    intermediates, some of which the host reads: outputs), nodes (ops of hal/op.h over
 *    value indices, listed in an order that respects every dependency, including
 *    in-place writes: a device must produce what running them in that order produces),
 *    and symbols: run-time integers (a KV length, a write position) with the range
 *    [min_value, max_value] they take. Shapes hold the bucket's upper bound; an
 *    executable serves every symbol value in range (a shape bucket), so one compiled
 *    decode step is re-used at every KV length.
 * 2. device_partition says which nodes the device takes, grouped into units it will
 *    compile (each unit convex: no path leaves it and comes back; the host checks), and
 *    for every node it declines, why. The host runs declined nodes op by op (on this
 *    device if supports_op says so, else elsewhere) and records the reason.
 * 3. executable_compile compiles a view (the host passes one unit as its own view) into
 *    a hal_executable; executable_get_info reports its predicted device time per run,
 *    the device memory it needs besides its bindings (scratch), device-memory bytes read
 *    and written per run, on-chip SRAM use, and the fused groups it formed.
 * 4. stream_execute runs it on a stream with every non-intermediate value and every
 *    output bound to a buffer (hal_binding), a scratch buffer and the symbols' values.
 *    It leaves one HAL_COMMAND_EXECUTE record (the whole execution) and one
 *    HAL_COMMAND_EXECUTE_GROUP record per fused group with the group's main op, so
 *    reports keep per-op-class accounting: the group records partition the execution's
 *    FLOPs and bytes and lie within its span; sum one level, never both.
 * 5. executable_serialize/deserialize move a compiled executable to disk and back. A blob
 *    carries the compatibility key of device_get_executable_key (plugin name and version,
 *    ABI version, device fingerprint); deserialize refuses a blob of another key, or one
 *    whose contents do not match its checksum, with FAILED_PRECONDITION naming the reason,
 *    and never executes it.
 * Lifetime: a hal_executable belongs to the device that compiled it and lives until
 * executable_destroy (before plugin_destroy). Strings and arrays an executable reports
 * stay valid until it is destroyed. Threading: an executable is immutable; it may run on
 * several streams at once (each execution has its own scratch).
 */
#ifndef HAL_PLUGIN_ABI_H_
#define HAL_PLUGIN_ABI_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAL_ABI_VERSION_MAJOR 1u
#define HAL_ABI_VERSION_MINOR 2u
#define HAL_PLUGIN_ENTRY_POINT "hal_plugin_get_api"

#define HAL_MAX_RANK 8
#define HAL_MAX_OP_INPUTS 4

/* True when `field` of struct `type` lies entirely within the reader-visible size
 * `size` (the struct_size the other side wrote). */
#define HAL_ABI_HAS_FIELD(type, field, size) \
  (offsetof(type, field) + sizeof(((type*)0)->field) <= (size_t)(size))

#if defined(_WIN32)
#define HAL_PLUGIN_EXPORT __declspec(dllexport)
#else
#define HAL_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* ---- status codes (same values as hal::StatusCode) ---------------------------- */
typedef enum hal_status_code {
  HAL_STATUS_OK = 0,
  HAL_STATUS_INVALID_ARGUMENT = 1,
  HAL_STATUS_NOT_FOUND = 2,
  HAL_STATUS_OUT_OF_MEMORY = 3,
  HAL_STATUS_UNIMPLEMENTED = 4,
  HAL_STATUS_UNAVAILABLE = 5,
  HAL_STATUS_DEVICE_LOST = 6,
  HAL_STATUS_FAILED_PRECONDITION = 7,
  HAL_STATUS_INTERNAL = 8,
  HAL_STATUS_DEADLINE_EXCEEDED = 9,
  HAL_STATUS_DATA_LOSS = 10,
  HAL_STATUS_ABI_MISMATCH = 11,
  HAL_STATUS_ABORTED = 12,
  /* Never returned. They make every 32-bit value a value of this type, so a host reading
   * a code it does not know (a newer or a buggy plugin) has defined behaviour in C++ and
   * maps it to INTERNAL instead of loading an out-of-range enum. */
  HAL_STATUS_RANGE_MIN_ = -2147483647 - 1,
  HAL_STATUS_RANGE_MAX_ = 2147483647
} hal_status_code;

/* ---- element types (same values as hal::DType) -------------------------------- */
typedef enum hal_dtype {
  HAL_DTYPE_INVALID = 0,
  HAL_DTYPE_F32 = 1,
  HAL_DTYPE_F16 = 2,
  HAL_DTYPE_BF16 = 3,
  HAL_DTYPE_I32 = 4,
  HAL_DTYPE_I64 = 5,
  HAL_DTYPE_I8 = 6,
  HAL_DTYPE_U8 = 7,
  HAL_DTYPE_FP8E4M3 = 8,
  HAL_DTYPE_FP8E5M2 = 9,
  /* appended in 1.2: quantized weight formats (block layouts in hal/op.h) */
  HAL_DTYPE_Q8_0 = 10,
  HAL_DTYPE_Q4_0 = 11,
  HAL_DTYPE_Q4_1 = 12,
  HAL_DTYPE_Q5_0 = 13,
  HAL_DTYPE_Q5_1 = 14,
  HAL_DTYPE_Q4_K = 15,
  HAL_DTYPE_Q5_K = 16,
  HAL_DTYPE_Q6_K = 17,
  HAL_DTYPE_I8_CHANNEL = 18,
  HAL_DTYPE_I4_G32 = 19,
  HAL_DTYPE_I4_G64 = 20,
  HAL_DTYPE_I4_G128 = 21,
  HAL_DTYPE_FP8E4M3_CHANNEL = 22
} hal_dtype;

/* ---- device kinds --------------------------------------------------------------- */
typedef enum hal_device_kind {
  HAL_DEVICE_KIND_CPU = 0,
  HAL_DEVICE_KIND_GPU = 1,
  HAL_DEVICE_KIND_NPU = 2,
  HAL_DEVICE_KIND_OTHER = 3
} hal_device_kind;

/* ---- memory kinds --------------------------------------------------------------- */
typedef enum hal_memory_kind {
  HAL_MEMORY_DEVICE = 0,       /* device-local memory (HBM/GDDR/DRAM); mappable only on CPU */
  HAL_MEMORY_HOST_PINNED = 1,  /* page-locked host memory for fast transfers; mappable */
  HAL_MEMORY_HOST_VISIBLE = 2, /* host memory the device can read and write; mappable */
  HAL_MEMORY_VIRTUAL = 3       /* no backing storage: sizes and accounting only (planning) */
} hal_memory_kind;

/* ---- op kinds (same values as hal::OpKind; semantics in hal/op.h) -------------- */
typedef enum hal_op_kind {
  HAL_OP_INVALID = 0,
  HAL_OP_MATMUL = 1,
  HAL_OP_ADD = 2,
  HAL_OP_MUL = 3,
  HAL_OP_SCALE = 4,
  HAL_OP_LAYER_NORM = 5,
  HAL_OP_RMS_NORM = 6,
  HAL_OP_SOFTMAX = 7,
  HAL_OP_GELU = 8,
  HAL_OP_SILU = 9,
  HAL_OP_ROTARY = 10,
  HAL_OP_ATTENTION = 11,
  HAL_OP_EMBEDDING = 12,
  HAL_OP_TRANSPOSE = 13,
  HAL_OP_CAST = 14,
  HAL_OP_ARGMAX = 15
} hal_op_kind;

/* What a completed command was: an op, a copy of some direction, or a fill. */
typedef enum hal_command_kind {
  HAL_COMMAND_OP = 0,
  HAL_COMMAND_COPY_HOST_TO_DEVICE = 1,
  HAL_COMMAND_COPY_DEVICE_TO_HOST = 2,
  HAL_COMMAND_COPY_DEVICE_TO_DEVICE = 3, /* within one device */
  HAL_COMMAND_COPY_PEER = 4,             /* between two devices of one plugin */
  HAL_COMMAND_FILL = 5,
  HAL_COMMAND_COLLECTIVE = 6, /* 1.2: a channel's collective (hal_command_record.collective) */
  HAL_COMMAND_EXECUTE = 7,    /* 1.2: one execution of an executable (stream_execute) */
  HAL_COMMAND_EXECUTE_GROUP = 8 /* 1.2: one fused group of that execution (a part of it) */
} hal_command_kind;

typedef enum hal_bound_by {
  HAL_BOUND_UNKNOWN = 0,
  HAL_BOUND_COMPUTE = 1,
  HAL_BOUND_MEMORY = 2,
  HAL_BOUND_OVERHEAD = 3, /* fixed per-command cost dominates */
  HAL_BOUND_LINK = 4      /* a host or peer link dominates (copies) */
} hal_bound_by;

/* ---- opaque handles ------------------------------------------------------------- */
typedef struct hal_error hal_error;
typedef struct hal_plugin hal_plugin;
typedef struct hal_device hal_device;
typedef struct hal_buffer hal_buffer;
typedef struct hal_stream hal_stream;
typedef struct hal_event hal_event;
typedef struct hal_channel hal_channel; /* 1.2 */
typedef struct hal_executable hal_executable; /* 1.2 */

/* ---- services the host offers the plugin ---------------------------------------- */
typedef enum hal_log_level {
  HAL_LOG_DEBUG = 0,
  HAL_LOG_INFO = 1,
  HAL_LOG_WARNING = 2,
  HAL_LOG_ERROR = 3
} hal_log_level;

typedef struct hal_host_api {
  size_t struct_size;
  uint32_t abi_major; /* the host's ABI version */
  uint32_t abi_minor;
  /* Writes a line to the host's log. May be NULL (then the plugin stays silent). */
  void (*log)(hal_log_level level, const char* plugin_name, const char* message);
} hal_host_api;

/* One key/value option for plugin_create, e.g. {"devices", "atom,rebel-quad"}. */
typedef struct hal_option {
  const char* key;
  const char* value;
} hal_option;

typedef struct hal_plugin_create_args {
  size_t struct_size;
  const hal_host_api* host; /* valid until plugin_destroy */
  const hal_option* options;
  size_t num_options;
  hal_plugin* plugin; /* out */
} hal_plugin_create_args;

/* ---- device description --------------------------------------------------------- */
typedef struct hal_link_info {
  int32_t peer_index;      /* -1: the host; otherwise a device index within this plugin */
  const char* kind;        /* "pcie-gen5-x16", "nvlink4", "ucie", "memory-bus", ... */
  double bandwidth_bytes_per_s; /* per direction */
  double latency_s;
} hal_link_info;

typedef struct hal_dtype_flops {
  hal_dtype dtype;
  double flops_per_s; /* dense peak */
} hal_dtype_flops;

typedef struct hal_property {
  const char* key; /* e.g. "source.memory_bandwidth", "preset", "driver_version" */
  const char* value;
} hal_property;

typedef struct hal_device_info {
  size_t struct_size;
  const char* id_prefix; /* "cpu", "npu", "cuda": the host numbers devices per prefix */
  hal_device_kind kind;
  const char* vendor;
  const char* name;
  const char* memory_kind; /* "DDR5", "GDDR6", "HBM3", "HBM3E", ... */
  uint64_t memory_bytes;   /* usable device memory capacity */
  double memory_bandwidth_bytes_per_s;
  const hal_dtype_flops* peak_flops;
  size_t num_peak_flops;
  uint64_t sram_bytes; /* on-chip SRAM / last-level cache */
  uint32_t compute_units;
  double clock_hz;
  double launch_overhead_s; /* fixed cost per dispatched command */
  const hal_link_info* links;
  size_t num_links;
  const hal_property* properties;
  size_t num_properties;
  /* 1.2: element sizes of the arrays above, as the plugin wrote them (0 or beyond
   * struct_size: the 1.0 layouts, sizeof of each struct then). */
  size_t peak_flops_size;
  size_t link_size;
  size_t property_size;
} hal_device_info;

typedef struct hal_memory_stats {
  size_t struct_size;
  uint64_t bytes_in_use;
  uint64_t peak_bytes_in_use;
  uint64_t allocation_count;    /* live allocations */
  uint64_t total_allocations;   /* allocations ever made */
  uint64_t capacity_bytes;
} hal_memory_stats;

/* Live readings. Fields a device cannot read are set to -1. */
typedef struct hal_telemetry {
  size_t struct_size;
  double utilization_percent;
  double memory_used_bytes;
  double power_watts;
  double temperature_celsius;
  double core_clock_hz;
  double memory_clock_hz;
} hal_telemetry;

/* ---- tensors and ops ------------------------------------------------------------ */
typedef struct hal_tensor {
  hal_buffer* buffer;    /* NULL only in device_supports_op queries */
  uint64_t offset_bytes; /* of element [0,...,0] from the buffer start */
  hal_dtype dtype;
  int32_t rank;
  int64_t shape[HAL_MAX_RANK];
  int64_t strides[HAL_MAX_RANK]; /* in elements; 0 broadcasts */
} hal_tensor;

typedef enum hal_gelu_approximation { HAL_GELU_ERF = 0, HAL_GELU_TANH = 1 } hal_gelu_approximation;
typedef enum hal_rope_style { HAL_ROPE_ROTATE_HALF = 0, HAL_ROPE_INTERLEAVED = 1 } hal_rope_style;

/* All op attributes in one flat struct; each op reads the ones hal/op.h lists for it. */
typedef struct hal_op_attrs {
  size_t struct_size;
  int32_t transpose_a; /* matmul */
  int32_t transpose_b; /* matmul */
  float alpha;         /* matmul: product scale; scale: multiplier */
  float beta;          /* scale: addend */
  float epsilon;       /* layer_norm, rms_norm */
  int32_t causal;      /* softmax, attention */
  float scale;         /* softmax input scale, attention score scale; 0 = default */
  int32_t gelu_approximation; /* hal_gelu_approximation */
  float rope_theta;
  int32_t rotary_dim;  /* 0 = whole head dim */
  int32_t rope_style;  /* hal_rope_style */
  int64_t kv_length;   /* attention: valid keys; 0 = k's whole sequence dim */
  int64_t q_offset;    /* attention: position of query 0; -1 = kv_length - Sq */
  int32_t perm[HAL_MAX_RANK]; /* transpose */
} hal_op_attrs;

typedef struct hal_op_desc {
  size_t struct_size;
  hal_op_kind kind;
  const hal_op_attrs* attrs;
  size_t tensor_size; /* sizeof(hal_tensor) as the writer knows it */
  const hal_tensor* inputs; /* num_inputs elements, each tensor_size bytes apart */
  uint32_t num_inputs;
  const hal_tensor* outputs;
  uint32_t num_outputs;
} hal_op_desc;

/* ---- collectives (1.2; CHANNELS above; semantics in hal/collective.h) ------------- */
typedef enum hal_collective_kind {
  HAL_COLLECTIVE_INVALID = 0,
  HAL_COLLECTIVE_ALL_REDUCE = 1,
  HAL_COLLECTIVE_ALL_GATHER = 2,
  HAL_COLLECTIVE_REDUCE_SCATTER = 3,
  HAL_COLLECTIVE_BROADCAST = 4,
  HAL_COLLECTIVE_SEND = 5,
  HAL_COLLECTIVE_RECV = 6
} hal_collective_kind;

typedef enum hal_reduction {
  HAL_REDUCTION_SUM = 0,
  HAL_REDUCTION_PROD = 1,
  HAL_REDUCTION_MIN = 2,
  HAL_REDUCTION_MAX = 3
} hal_reduction;

/* How a collective's bytes travelled. */
typedef enum hal_link_class {
  HAL_LINK_NONE = 0,          /* nothing crossed a link */
  HAL_LINK_SHARED_MEMORY = 1, /* members of one process reading each other's memory */
  HAL_LINK_PEER = 2,          /* device-to-device (PCIe P2P through a switch, NVLink) */
  HAL_LINK_DIE_TO_DIE = 3,    /* chiplets of one package (UCIe) */
  HAL_LINK_HOST_STAGED = 4,   /* through host memory over both devices' host links */
  HAL_LINK_NETWORK = 5        /* between processes, through the host's hal_transport */
} hal_link_class;

typedef enum hal_collective_algorithm {
  HAL_COLLECTIVE_ALGORITHM_DEFAULT = 0,
  HAL_COLLECTIVE_ALGORITHM_RING = 1,
  HAL_COLLECTIVE_ALGORITHM_TREE = 2,
  HAL_COLLECTIVE_ALGORITHM_DIRECT = 3 /* every member exchanges with every other */
} hal_collective_algorithm;

/* One completed command, as read back by stream_take_records. */
typedef struct hal_command_record {
  size_t struct_size;
  uint64_t tag;           /* the caller's tag from the enqueue call */
  hal_command_kind command;
  hal_op_kind op;         /* for HAL_COMMAND_OP */
  uint64_t start_ns;      /* device time (simulated on simulated devices) */
  uint64_t end_ns;
  double flops;
  uint64_t bytes_read;    /* device memory (HBM/GDDR/DRAM) bytes read */
  uint64_t bytes_written; /* device memory bytes written */
  uint64_t sram_bytes_read;
  uint64_t sram_bytes_written;
  uint64_t link_bytes; /* bytes that crossed a host or peer link (collectives: sent) */
  hal_bound_by bound;
  /* ---- appended in 1.2 (HAL_COMMAND_COLLECTIVE; readers of a shorter record, and
   * records of other commands: collective 0, ranks -1, the rest 0) ---- */
  hal_collective_kind collective;
  int32_t channel_rank; /* this member's rank */
  int32_t channel_size;
  int32_t peer_rank;            /* the rank it sent to (ring successor, send's peer); -1
                                   when it sent to several or none */
  uint64_t link_bytes_received; /* bytes it received over links */
  hal_link_class link_class;    /* the slowest class of link its bytes crossed */
  hal_collective_algorithm algorithm;
  /* 1.2: for HAL_COMMAND_EXECUTE_GROUP, the fused group's index in the executable's
   * info and its main node (an index into the compiled view's nodes); -1 otherwise
   * (and for readers beyond struct_size). */
  int32_t group;
  int32_t node;
} hal_command_record;

/* ---- argument structs for entries that may grow --------------------------------- */
typedef struct hal_buffer_allocate_args {
  size_t struct_size;
  hal_device* device;
  uint64_t size_bytes;
  hal_memory_kind memory_kind;
  uint64_t alignment; /* 0 = the device's default (at least 64 bytes) */
  hal_buffer* buffer; /* out */
} hal_buffer_allocate_args;

#define HAL_STREAM_FLAG_RECORD_COMMANDS 1u /* keep a hal_command_record per command */

typedef struct hal_stream_create_args {
  size_t struct_size;
  hal_device* device;
  uint32_t flags;
  hal_stream* stream; /* out */
} hal_stream_create_args;

/* A copy of size_bytes. Each side is either a buffer (+offset) or a host pointer:
 * exactly one of src_buffer/src_host and of dst_buffer/dst_host is non-NULL. Buffers
 * may belong to any device of this plugin (peer copy) when the device lists a peer
 * link; the host stages other device-to-device copies itself. */
typedef struct hal_copy_args {
  size_t struct_size;
  hal_stream* stream;
  hal_buffer* src_buffer;
  uint64_t src_offset;
  const void* src_host;
  hal_buffer* dst_buffer;
  uint64_t dst_offset;
  void* dst_host;
  uint64_t size_bytes;
  uint64_t tag;
} hal_copy_args;

typedef struct hal_fill_args {
  size_t struct_size;
  hal_stream* stream;
  hal_buffer* buffer;
  uint64_t offset;
  uint64_t size_bytes;   /* a multiple of pattern_size */
  uint8_t pattern[8];
  uint32_t pattern_size; /* 1, 2, 4 or 8 */
  uint64_t tag;
} hal_fill_args;

typedef struct hal_dispatch_args {
  size_t struct_size;
  hal_stream* stream;
  const hal_op_desc* op;
  uint64_t tag;
} hal_dispatch_args;

typedef void (*hal_host_func)(void* user_data);

/* ---- error details (1.2) -------------------------------------------------------- */
/* Bits of hal_error_detail.fields: which facts an error carries. */
#define HAL_ERROR_DETAIL_COMMAND_TAG 1u /* command_tag is set */
#define HAL_ERROR_DETAIL_NODE 2u        /* 1.2: node is set */
#define HAL_ERROR_DETAIL_GROUP 4u       /* 1.2: group is set */

/* Structured facts about an error, for programs to act on (the message is for people).
 * Filled by error_get_detail; each fact is valid only when its bit is in `fields`. */
typedef struct hal_error_detail {
  size_t struct_size;
  uint32_t fields;      /* HAL_ERROR_DETAIL_* bits */
  uint64_t command_tag; /* the tag of the stream command that failed (from its enqueue
                           call), e.g. for an error stream_synchronize returns */
  /* 1.2: an executable's failure: the node (index into the compiled view's nodes) and
   * the fused group (index into the executable's info) that failed; also a compile or
   * partition error about one node. */
  int32_t node;
  int32_t group;
} hal_error_detail;

/* ---- extensions (1.2; see EXTENSIONS above) ------------------------------------- */
/* Type ids of the extensions defined in this repository. */
#define HAL_EXTENSION_TYPE_NPU_SIM_COUNTERS 1u /* hal_npu_sim/npu_sim_ext.h */
#define HAL_EXTENSION_TYPE_PRIVATE_FIRST 0x80000000u

/* The first member of every extension struct. */
typedef struct hal_extension_header {
  size_t struct_size; /* of the whole extension struct, as its plugin knows it */
  uint32_t type;      /* a HAL_EXTENSION_TYPE_* id */
  uint32_t version;   /* the extension's own version, starting at 1 */
} hal_extension_header;
/* ---- channels (1.2; CHANNELS above) --------------------------------------------- */
/* One message exchange of a hal_transport: send `send_bytes` to process `send_peer` and
 * receive `recv_bytes` from process `recv_peer`, both at once (either part may be absent:
 * peer -1). Messages between two processes are matched by `tag` in order. */
typedef struct hal_transport_exchange_args {
  size_t struct_size;
  int32_t send_peer;     /* -1: nothing to send */
  const void* send_data; /* send_bytes readable bytes, valid for the call */
  uint64_t send_bytes;
  int32_t recv_peer; /* -1: nothing to receive */
  void* recv_data;   /* recv_bytes writable bytes, valid for the call */
  uint64_t recv_bytes;
  uint64_t tag;
  double timeout_s; /* give up after this long without progress (> 0) */
} hal_transport_exchange_args;

/* Moves bytes between the processes of a multi-process job; supplied by the host (e.g. the
 * HAL's MPI bootstrap) so that a plugin reaches other processes without linking MPI. The
 * plugin copies this struct at channel_create; `context` and the functions must stay valid
 * until every channel created with it is destroyed. Functions may be called from any
 * thread, concurrently. */
typedef struct hal_transport {
  size_t struct_size;
  void* context; /* owned by the host */
  int32_t rank;  /* this process */
  int32_t size;  /* processes */
  /* REQUIRED: blocks until both parts completed. Returns HAL_STATUS_OK, or a failure
   * (DEADLINE_EXCEEDED after timeout_s, UNAVAILABLE when a peer is gone) with a message
   * written (NUL-terminated, truncated) into message[0..message_size). */
  hal_status_code (*exchange)(void* context, const hal_transport_exchange_args* args, char* message,
                              size_t message_size);
  /* OPTIONAL: ends the job on every process with `reason` (MPI_Abort): called when a member
   * fails, so that no other process waits for it. Default when NULL: the others fail by
   * their timeout. */
  void (*abort)(void* context, const char* reason);
} hal_transport;

typedef struct hal_channel_create_args {
  size_t struct_size;
  hal_device* device; /* the device this member's collectives run on */
  int32_t rank;       /* in [0, size) */
  int32_t size;       /* members; with a transport, its size (and rank its rank) */
  const char* group;  /* members of one plugin in this process created with equal group and
                         size form one communicator (copied; NULL = "") */
  const hal_transport* transport; /* NULL: every member is in this process (copied) */
  double timeout_s;               /* how long a collective waits for its peers; <= 0: 300 s */
  hal_channel* channel;           /* out: owned by the caller, released with channel_destroy */
} hal_channel_create_args;

/* One collective (hal/collective.h gives the buffer sizes per kind). Buffers belong to
 * the stream's device, which is the channel's; an unused side is NULL. */
typedef struct hal_collective_args {
  size_t struct_size;
  hal_stream* stream;
  hal_channel* channel;
  hal_collective_kind kind;
  hal_reduction reduction; /* all_reduce, reduce_scatter */
  hal_dtype dtype;
  uint64_t count;          /* elements (per member; see hal/collective.h) */
  hal_buffer* send_buffer; /* NULL for recv and for a broadcast's non-root members */
  uint64_t send_offset;
  hal_buffer* recv_buffer; /* NULL for send */
  uint64_t recv_offset;
  int32_t peer; /* broadcast: the root; send/recv: the other rank */
  uint64_t tag;
} hal_collective_args;

/* ---- executables (1.2; see EXECUTABLES above) ---------------------------------- */
typedef enum hal_graph_value_kind {
  HAL_GRAPH_VALUE_INPUT = 0,       /* bound at each execution, read only */
  HAL_GRAPH_VALUE_CONSTANT = 1,    /* bound, read only, the same contents every run (weights) */
  HAL_GRAPH_VALUE_STATE = 2,       /* bound, read and written in place; persists (KV caches) */
  HAL_GRAPH_VALUE_INTERMEDIATE = 3 /* produced by a node; the executable's own storage unless
                                      is_output (then bound, and written by the execution) */
} hal_graph_value_kind;

/* A run-time integer and the range it takes; shapes hold the bucket's upper bound. */
typedef struct hal_graph_symbol {
  size_t struct_size;
  const char* name; /* "kv", "past.0"; may be NULL */
  int64_t min_value;
  int64_t max_value;
} hal_graph_symbol;

typedef struct hal_graph_value {
  size_t struct_size;
  const char* name; /* for messages; may be NULL */
  hal_graph_value_kind kind;
  int32_t is_output; /* an intermediate the host reads: bound like an input */
  /* dtype, rank, shape and strides (elements) of the value. buffer is NULL;
   * offset_bytes is the value's offset into the storage of alias_of (0 for a value that
   * owns its storage). */
  hal_tensor tensor;
  /* -1: the value owns its storage (bound, or the executable's). Otherwise the index of
   * a value that owns storage (alias_of == -1, a lower index) of which this value is a
   * view at offset_bytes (+ offset_symbol's value * offset_symbol_stride_bytes). A view
   * has the kind of its owner and is never bound itself. */
  int32_t alias_of;
  int32_t offset_symbol; /* -1: none */
  int64_t offset_symbol_stride_bytes;
} hal_graph_value;

typedef struct hal_graph_node {
  size_t struct_size;
  const char* name; /* "h.3.attn.qkv"; may be NULL */
  hal_op_kind op;
  const hal_op_attrs* attrs;
  const int32_t* inputs; /* value indices, num_inputs of them (op semantics: hal/op.h) */
  uint32_t num_inputs;
  int32_t output; /* a value index */
  /* Attention: -1, or the symbol whose run-time value is attrs->kv_length. */
  int32_t kv_length_symbol;
} hal_graph_node;

/* A graph the host shows a device. Element sizes let each element struct grow. */
typedef struct hal_graph_view {
  size_t struct_size;
  const hal_graph_value* values;
  size_t num_values;
  size_t value_size;
  const hal_graph_node* nodes; /* in an order that respects every dependency */
  size_t num_nodes;
  size_t node_size;
  const hal_graph_symbol* symbols;
  size_t num_symbols;
  size_t symbol_size;
} hal_graph_view;

/* Called by device_partition once per node the device declines, with why (the string is
 * valid during the call only). */
typedef void (*hal_partition_decline_fn)(void* user_data, uint32_t node, const char* reason);

typedef struct hal_partition_args {
  size_t struct_size;
  hal_device* device;
  const hal_graph_view* graph;
  /* Out, host-allocated, graph->num_nodes entries: the unit (0 .. num_units-1) that will
   * compile each node, or -1 when the device declines it. */
  int32_t* node_unit;
  uint32_t num_units; /* out */
  hal_partition_decline_fn decline; /* may be NULL: the host does not want reasons */
  void* decline_user_data;
} hal_partition_args;

typedef struct hal_executable_compile_args {
  size_t struct_size;
  hal_device* device;
  const hal_graph_view* graph; /* copied by the plugin as it needs; valid during the call */
  const hal_option* options;   /* compiler options, e.g. {"fusion", "off"}; unknown keys
                                  are INVALID_ARGUMENT */
  size_t num_options;
  hal_executable* executable; /* out */
} hal_executable_compile_args;

/* One fused group: nodes that run as one kernel or one on-chip region. */
typedef struct hal_fused_group_info {
  size_t struct_size;
  const char* name;      /* e.g. "h.0.mlp.fc+gelu"; valid until executable_destroy */
  hal_op_kind main_op;   /* the op that names its class in reports (the matmul of a matmul
                            + bias + gelu group) */
  int32_t main_node;     /* index into the view's nodes */
  const int32_t* nodes;  /* view node indices, in execution order; valid until destroy */
  size_t num_nodes;
  double predicted_seconds; /* at the symbol values asked for */
  double flops;
  uint64_t dram_bytes_read; /* device memory (HBM/GDDR/DRAM) */
  uint64_t dram_bytes_written;
  uint64_t sram_bytes; /* on-chip SRAM the group holds at its peak (0 if not modelled) */
  hal_bound_by bound;  /* what limits the group (HAL_BOUND_UNKNOWN if not modelled) */
} hal_fused_group_info;

typedef struct hal_executable_info {
  size_t struct_size;
  /* In: predict at these symbol values (one per view symbol); NULL: each symbol's
   * max_value. */
  const int64_t* symbol_values;
  size_t num_symbol_values;
  /* Out. */
  double predicted_seconds;   /* device time of one execution */
  uint64_t scratch_bytes;     /* device memory an execution needs besides its bindings */
  uint64_t dram_bytes_read;   /* device-memory bytes per execution */
  uint64_t dram_bytes_written;
  uint64_t sram_bytes;        /* peak on-chip SRAM held (0 if not modelled) */
  double flops;
  uint32_t num_groups;
  /* In: a host array of groups_capacity elements, group_size bytes apart (each with
   * struct_size set by the host); the plugin fills min(num_groups, capacity). */
  hal_fused_group_info* groups;
  size_t groups_capacity;
  size_t group_size;
} hal_executable_info;

/* A buffer for one bound value of the view (not a view value, not an internal
 * intermediate). */
typedef struct hal_binding {
  int32_t value;
  hal_buffer* buffer;
  uint64_t offset_bytes;
} hal_binding;

typedef struct hal_execute_args {
  size_t struct_size;
  hal_stream* stream;
  hal_executable* executable; /* of the stream's device */
  const hal_binding* bindings; /* one per bound value, each binding_size bytes apart */
  size_t num_bindings;
  size_t binding_size;
  hal_buffer* scratch; /* >= scratch_bytes at scratch_offset; NULL when that is 0 */
  uint64_t scratch_offset;
  const int64_t* symbol_values; /* one per view symbol, each within its range */
  size_t num_symbol_values;
  uint64_t tag;
} hal_execute_args;

typedef struct hal_executable_deserialize_args {
  size_t struct_size;
  hal_device* device;
  const void* data;
  size_t size;
  hal_executable* executable; /* out */
} hal_executable_deserialize_args;

/* ---- the table ------------------------------------------------------------------ */
typedef struct hal_plugin_api {
  size_t struct_size;
  uint32_t abi_major;
  uint32_t abi_minor;
  const char* plugin_name;    /* short, unique: "cpu", "npu_sim", "cuda" */
  const char* plugin_version; /* the plugin's own version string */

  /* errors (REQUIRED) */
  hal_status_code (*error_code)(const hal_error* error);
  const char* (*error_message)(const hal_error* error); /* valid until error_destroy */
  void (*error_destroy)(hal_error* error);

  /* plugin lifetime (REQUIRED). plugin_create may fail (e.g. a bad option); the host
   * then reports the plugin as rejected with that message. */
  hal_error* (*plugin_create)(hal_plugin_create_args* args);
  void (*plugin_destroy)(hal_plugin* plugin);

  /* devices (REQUIRED) */
  hal_error* (*device_count)(hal_plugin* plugin, uint32_t* count);
  hal_error* (*device_get)(hal_plugin* plugin, uint32_t index, hal_device** device);
  /* Fills *info; pointers inside stay valid until plugin_destroy. The host sets
   * info->struct_size before the call. */
  hal_error* (*device_get_info)(hal_device* device, hal_device_info* info);
  /* *supported = 1 when the device can run this op with these dtypes/shapes/strides.
   * Tensor buffers may be NULL. Returns an error only for a malformed descriptor. */
  hal_error* (*device_supports_op)(hal_device* device, const hal_op_desc* op, int32_t* supported);
  hal_error* (*device_get_memory_stats)(hal_device* device, hal_memory_stats* stats);

  /* buffers (REQUIRED) */
  hal_error* (*buffer_allocate)(hal_buffer_allocate_args* args);
  void (*buffer_free)(hal_buffer* buffer); /* waits for nothing: the caller ensures no use */
  /* Host pointer to the contents, valid until buffer_free. Fails with
   * HAL_STATUS_FAILED_PRECONDITION for memory the host cannot address. */
  hal_error* (*buffer_map)(hal_buffer* buffer, void** host_ptr);

  /* streams (REQUIRED) */
  hal_error* (*stream_create)(hal_stream_create_args* args);
  /* Waits for the stream's work, then destroys it. */
  void (*stream_destroy)(hal_stream* stream);
  hal_error* (*stream_copy)(const hal_copy_args* args);
  hal_error* (*stream_fill)(const hal_fill_args* args);
  /* Validates and enqueues. Failures found later (e.g. an index out of range) make
   * the stream's next synchronize return that error; the commands after the failed one
   * in the same stream are skipped and reported as HAL_STATUS_ABORTED. */
  hal_error* (*stream_dispatch)(const hal_dispatch_args* args);
  /* Blocks until all enqueued work is done; returns (and clears) the first error of
   * that work. */
  hal_error* (*stream_synchronize)(hal_stream* stream);
  /* Moves up to `capacity` completed records into `records` (array elements are
   * `record_size` bytes apart, each with struct_size set by the plugin) and sets
   * *count. Records stay queued until taken. */
  hal_error* (*stream_take_records)(hal_stream* stream, hal_command_record* records,
                                    size_t record_size, size_t capacity, size_t* count);

  /* events (REQUIRED) */
  hal_error* (*event_create)(hal_device* device, hal_event** event);
  void (*event_destroy)(hal_event* event);
  /* The event completes when all work enqueued on `stream` before this call is done;
   * its timestamp is the device time at that point. Re-recording resets it. */
  hal_error* (*stream_record_event)(hal_stream* stream, hal_event* event);
  /* Blocks until the event's latest record completed (immediately if never recorded). */
  hal_error* (*event_synchronize)(hal_event* event);
  /* *done = 1 when completed (or never recorded). */
  hal_error* (*event_query)(hal_event* event, int32_t* done);
  /* Device time of completion, in ns, on the device's clock. FAILED_PRECONDITION when
   * not completed. */
  hal_error* (*event_timestamp_ns)(hal_event* event, uint64_t* timestamp_ns);

  /* OPTIONAL: work enqueued on `stream` after this call waits until `event` (of any
   * device of this plugin) completes. Default when NULL: the host enqueues a host
   * function that calls event_synchronize. */
  hal_error* (*stream_wait_event)(hal_stream* stream, hal_event* event);
  /* OPTIONAL: runs fn(user_data) on a plugin thread, in stream order; it may block.
   * Default when NULL: cross-plugin waits are refused with UNIMPLEMENTED. */
  hal_error* (*stream_enqueue_host_func)(hal_stream* stream, hal_host_func fn, void* user_data);

  /* ---- appended in 1.1 ---- */
  /* OPTIONAL: live readings. Default when NULL: all readings unknown (-1). */
  hal_error* (*device_get_telemetry)(hal_device* device, hal_telemetry* telemetry);

  /* ---- appended in 1.2 ---- */
  /* OPTIONAL: fills the facts `error` carries into *detail (the caller sets struct_size;
   * nothing beyond it is written; fields = 0 when it carries none). Errors of stream
   * work found while running (returned by stream_synchronize) should carry the failed
   * command's tag. Default when NULL: no details (the host has the code and message). */
  void (*error_get_detail)(const hal_error* error, hal_error_detail* detail);
  /* OPTIONAL: the extension of type id `type`, or NULL when the plugin has none; see
   * EXTENSIONS. The struct starts with a hal_extension_header whose type is `type` and
   * stays valid until plugin_destroy. Default when NULL: the plugin has no extensions. */
  const hal_extension_header* (*get_extension)(hal_plugin* plugin, uint32_t type);
  /* ---- appended in 1.2: channels (CHANNELS above) ---- */
  /* OPTIONAL (with channel_destroy and stream_collective): creates this device's member
   * of a communicator. Does not wait for the other members (they may be created later,
   * from any thread); a collective waits for them. Fails with UNIMPLEMENTED when the device
   * has no collectives (then the other two entries are never called for it). Default when
   * NULL: the host refuses channels on this plugin's devices with UNIMPLEMENTED. */
  hal_error* (*channel_create)(hal_channel_create_args* args);
  /* OPTIONAL (set with channel_create): releases the member; the host has synchronized
   * every stream that used it. */
  void (*channel_destroy)(hal_channel* channel);
  /* OPTIONAL: breaks the communicator: collectives waiting on any member fail at once
   * with ABORTED naming `reason`, and later ones too; with a transport, the transport's
   * abort is called. Default when NULL: the host cannot abort; waiting members fail by
   * their timeout. */
  void (*channel_abort)(hal_channel* channel, const char* reason);
  /* OPTIONAL (set with channel_create): validates and enqueues a collective; failures
   * found while running (a peer's timeout, a mismatch) are reported by the stream's
   * next synchronize, as for any command. */
  hal_error* (*stream_collective)(const hal_collective_args* args);

  /* ---- appended in 1.2: executables (EXECUTABLES above) ---- */
  /* OPTIONAL as a set (device_partition, executable_compile, executable_destroy,
   * executable_get_info, stream_execute: all set or all NULL). Default when NULL: the
   * device compiles nothing; the host declines every node for it ("the plugin has no
   * compiler") and dispatches op by op.
   * device_partition: fills args->node_unit and num_units and calls decline for each
   * declined node. A node the device takes must also be one supports_op accepts or one
   * it can run inside an executable. Errors only for a malformed view. */
  hal_error* (*device_partition)(hal_partition_args* args);
  /* Compiles the whole view (every node) into args->executable, owned by the caller
   * (executable_destroy). A view the device cannot compile is UNIMPLEMENTED naming the
   * node (hal_error_detail.node). */
  hal_error* (*executable_compile)(hal_executable_compile_args* args);
  void (*executable_destroy)(hal_executable* executable);
  /* Fills *info (the host sets struct_size and the in fields); nothing beyond
   * struct_size is written. */
  hal_error* (*executable_get_info)(hal_executable* executable, hal_executable_info* info);
  /* Validates (bindings complete, in bounds, on the stream's device; symbols in range)
   * and enqueues one execution. Failures while running are reported by the stream's next
   * synchronize with the tag and, where known, node and group. */
  hal_error* (*stream_execute)(const hal_execute_args* args);
  /* OPTIONAL as a set (executable_serialize, executable_deserialize,
   * device_get_executable_key). Default when NULL: executables are not serializable; the
   * host compiles them again in every process.
   * executable_serialize: *size = the blob's size; writes it to data when capacity >=
   * that size (call with capacity 0 to learn the size). */
  hal_error* (*executable_serialize)(hal_executable* executable, void* data, size_t capacity,
                                     size_t* size);
  /* Makes an executable from a blob of executable_serialize on a device with the same
   * compatibility key; refuses any other blob (FAILED_PRECONDITION naming why). */
  hal_error* (*executable_deserialize)(hal_executable_deserialize_args* args);
  /* The compatibility key of blobs this device makes and accepts (NUL-terminated text:
   * plugin name and version, ABI version, device fingerprint). *length = its length
   * without the NUL; written to buffer when capacity > length. */
  hal_error* (*device_get_executable_key)(hal_device* device, char* buffer, size_t capacity,
                                          size_t* length);
} hal_plugin_api;

/* The size of each minor's table. A host refuses any table shorter than 1.0's. */
#define HAL_PLUGIN_API_SIZE_1_0 offsetof(hal_plugin_api, device_get_telemetry)
#define HAL_PLUGIN_API_SIZE_1_1 offsetof(hal_plugin_api, error_get_detail)

/* The one exported entry point. Returns a table with static storage duration (never
 * NULL in a working plugin). `host_abi_major/minor` are the host's version, so a plugin
 * may adapt; it must not fail here: version refusal is the host's job. */
typedef const hal_plugin_api* (*hal_plugin_get_api_fn)(uint32_t host_abi_major,
                                                       uint32_t host_abi_minor);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* HAL_PLUGIN_ABI_H_ */
