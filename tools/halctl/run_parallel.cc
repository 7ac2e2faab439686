// The tensor/pipeline-parallel side of `halctl run` (run_parallel.h).
#include "run_parallel.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "hal/runtime/parallel.h"
#include "hal/units.h"
#include "plan_parallel.h"
#include "run_summary.h"
#if HAL_HALCTL_WITH_MPI
#include "hal/mpi/mpi_bootstrap.h"
#endif

namespace halctl {

namespace rt = hal::runtime;

namespace {

#if HAL_HALCTL_WITH_MPI
// mpirun ends the other ranks with SIGTERM when one dies: say so before going.
char g_term_message[160];
void on_terminate(int) {
  const ssize_t n = ::write(STDERR_FILENO, g_term_message, std::strlen(g_term_message));
  (void)n;
  ::_exit(1);
}
#endif

bool mpi_launch() {
#if HAL_HALCTL_WITH_MPI
  return hal::mpi::launched_by_mpi();
#else
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(v)) return true;
  return false;
#endif
}

}  // namespace

bool wants_parallel_run(const std::optional<int32_t>& tp, const std::optional<int32_t>& pp) {
  return tp.has_value() || pp.has_value() || mpi_launch();
}

int run_parallel(const ParallelRunRequest& req) {
  hal::Transport* transport = nullptr;
  int32_t world = 1, local_rank = 0;
  std::string host;
#if HAL_HALCTL_WITH_MPI
  std::unique_ptr<hal::mpi::MpiBootstrap> mpi;
  if (hal::mpi::launched_by_mpi()) {
    auto b = hal::mpi::MpiBootstrap::init();
    if (!b.ok()) return report_error("run", b.status());
    mpi = std::move(*b);
    transport = mpi.get();
    world = mpi->size();
    local_rank = mpi->local_rank();
    host = mpi->host_name();
    std::snprintf(g_term_message, sizeof g_term_message,
                  "halctl run: rank %d of %d (%s) ended by the launcher: another rank of the job "
                  "failed\n",
                  mpi->rank(), mpi->size(), host.c_str());
    ::signal(SIGTERM, on_terminate);
  }
#else
  if (mpi_launch())
    return usage_error("run",
                       "started by an MPI launcher, but this halctl was built without MPI "
                       "(apt-get install libopenmpi-dev openmpi-bin, then rebuild)");
#endif
  const int32_t rank = transport ? transport->rank() : 0;
  // A failure ends the whole job under MPI (so no rank waits for this one).
  auto fail = [&](int code) {
#if HAL_HALCTL_WITH_MPI
    // This rank is the one that failed: the launcher's SIGTERM while it ends the job must
    // not make it say another rank did.
    g_term_message[0] = '\0';
#endif
    if (transport && world > 1) transport->abort("halctl run failed (see above)");
    return code;
  };
  // Under mpirun without degrees: every rank of the job in one tensor-parallel group.
  rt::ParallelDegrees deg;
  deg.pp = req.pp.value_or(1);
  deg.tp = req.tp ? *req.tp : (transport ? std::max(1, world / deg.pp) : 1);
  if (transport && deg.ranks() != world)
    return fail(usage_error("run", deg.to_string() + " needs " + std::to_string(deg.ranks()) +
                                       " ranks; mpirun started " + std::to_string(world)));

  auto platform = open_platform(req.common);
  if (!platform.ok()) return fail(report_error("run", platform.status()));
  auto ids = expand_device_ranges(split_list(req.devices_text));
  if (!ids.ok()) return fail(report_error("run", ids.status()));
  std::string id_list;
  for (const std::string& id : *ids) id_list += (id_list.empty() ? "" : ",") + id;
  auto devices = parse_device_list(**platform, id_list);
  if (!devices.ok()) return fail(report_error("run", devices.status()));
  std::vector<hal::Device*> rank_devices;
  if (transport) {
    // This rank's device: its place among the ranks on its host.
    rank_devices = {(*devices)[size_t(local_rank) % devices->size()]};
  } else if (devices->size() == 1) {
    rank_devices.assign(size_t(deg.ranks()), (*devices)[0]);  // e.g. every rank on cpu:0
  } else if (int32_t(devices->size()) == deg.ranks()) {
    rank_devices = *devices;
  } else {
    return usage_error("run", deg.to_string() + " needs " + std::to_string(deg.ranks()) +
                                  " devices (one per rank, or one for all), " +
                                  std::to_string(devices->size()) + " given");
  }

  auto model = rt::load_model(req.model_name);
  if (!model.ok()) return fail(report_error("run", model.status()));
  std::shared_ptr<const rt::Model> shared(std::move(*model));
  rt::ParallelRunOptions o;
  o.degrees = deg;
  o.devices = rank_devices;
  o.transport = transport;
  o.compute_dtype = req.dtype;
  o.profile = req.placing.profile();
  o.timeout_s = req.collective_timeout_s;
  auto run = rt::ParallelRun::create(shared, o);
  if (!run.ok()) return fail(report_error("run", run.status()));
  rt::GenerationOptions go = req.generation;
  rt::ParallelRun::RankOptionsFn per_rank;
  if (req.text) {
    // Every rank follows the text to make the same stop decisions; rank 0 streams it.
    req.text->attach(go, /*stream=*/rank == 0 && !req.common.json && req.prompts.size() == 1);
    per_rank = [&req](size_t local_index, rt::GenerationOptions& o) {
      if (local_index != 0) o.on_token = req.text->follower();
    };
  }
  auto result = (*run)->generate(req.prompts, go, per_rank);
  if (!result.ok()) return fail(report_error("run", result.status()));
  const rt::GenerationResult& r = *result;
  if (req.text) req.text->complete(r);

  // Every rank has the tokens; rank 0 speaks (and writes the report of its own rank).
  if (rank != 0) return 0;
  if (!req.dump_logits.empty())
    if (hal::Status s = write_logits(req.dump_logits, r); !s.ok()) return report_error("run", s);
  auto outputs = write_run_outputs(req.placing, shared->name(), req.dtype,
                                   {(*run)->local_devices()[0]}, nullptr, r);
  if (!outputs.ok()) return report_error("run", outputs.status());
  std::string ranks;
  for (int32_t i = 0; i < deg.ranks(); ++i) {
    const std::string dev =
        transport ? std::string("one device per process") : rank_devices[size_t(i)]->id();
    if (transport) {
      ranks = fmt::format("{} processes (mpirun{}), each on its host's device by local rank", world,
                          host.empty() ? "" : ", rank 0 on " + host);
      break;
    }
    ranks += (ranks.empty() ? "" : ", ") + fmt::format("rank {} {}", i, dev);
  }
  const auto& cfg = shared->config();
  const std::string rank0_device = (*run)->local_devices()[0]->id();
  if (req.common.json) {
    nlohmann::json out;
    out["model"] = shared->name();
    out["family"] = std::string(rt::model_family_name(cfg.family));
    out["dtype"] = std::string(hal::dtype_name(req.dtype));
    out["tensor_parallel"] = deg.tp;
    out["pipeline_parallel"] = deg.pp;
    out["processes"] = world;
    nlohmann::json devs = nlohmann::json::array();
    for (hal::Device* d : (*run)->local_devices()) devs.push_back(d->id());
    out["devices"] = devs;
    out["generated_ids"] =
        req.prompts.size() == 1 ? nlohmann::json(r.tokens[0]) : nlohmann::json(r.tokens);
    out["prompt_ids"] =
        req.prompts.size() == 1 ? nlohmann::json(req.prompts[0]) : nlohmann::json(req.prompts);
    out["prompt_tokens"] = r.prompt_tokens;
    out["decode_tokens"] = r.decode_tokens;
    out["prefill_seconds"] = r.prefill_seconds;
    out["decode_seconds"] = r.decode_seconds;
    out["decode_tokens_per_s"] = r.decode_tokens_per_s();
    out["kv_cache_bytes"] = r.kv_cache_bytes;
    if (req.text) req.text->add_json(out);
    if (!req.dump_logits.empty()) out["dump_logits"] = req.dump_logits;
    out["device_clock_rank0"] = {{"device", rank0_device},
                                 {"prefill_seconds", r.prefill_device_seconds},
                                 {"decode_seconds", r.decode_device_seconds},
                                 {"decode_tokens_per_s", r.device_decode_tokens_per_s()}};
    out["weight_bytes_per_rank"] = (*run)->sessions()[0]->weight_bytes();
    if (req.placing.profile()) {
      out["collectives_rank0"] =
          nlohmann::json::parse(rt::collectives_to_json(outputs->collectives));
    }
    print_json(out);
    return 0;
  }
  fmt::print("model      {} ({}, {:.1f} M parameters, {})\n", shared->name(), cfg.summary(),
             double(cfg.parameter_count()) / 1e6, hal::dtype_name(req.dtype));
  fmt::print("parallel   {}: {}\n", deg.to_string(), ranks);
  // Rank 0's device clock includes the collectives over its modelled links: every member
  // of a collective books the same interval, so it waits for the slowest peer.
  print_generation_lines(req.prompts, r, req.text, "rank 0 on " + rank0_device);
  fmt::print("memory     rank 0: weights {}, KV cache {}\n",
             hal::format_bytes((*run)->sessions()[0]->weight_bytes()),
             hal::format_bytes(r.kv_cache_bytes));
  if (!req.dump_logits.empty()) {
    size_t rows = 0;
    for (const auto& t : r.tokens) rows += t.size();
    fmt::print("logits     {} rows of {} floats in {}\n", rows, cfg.vocab_size, req.dump_logits);
  }
  for (const rt::CollectiveReport& c : outputs->collectives)
    fmt::print("collective rank 0 on {}: {} x {} in {}, sent {}, received {} over {}\n", c.device,
               c.count, c.collective, hal::format_seconds(c.seconds),
               hal::format_bytes(c.bytes_sent), hal::format_bytes(c.bytes_received), c.link);
  if (!req.placing.report_path.empty()) fmt::print("report     {}\n", req.placing.report_path);
  if (!req.placing.trace_path.empty()) fmt::print("trace      {}\n", req.placing.trace_path);
  return 0;
}

}  // namespace halctl
