// Tensor- and pipeline-parallel runs: channels, shards and sessions per rank, and the
// local ranks generating together (hal/runtime/parallel.h).
#include <array>
#include <atomic>
#include <thread>

#include "hal/runtime/parallel.h"

namespace hal::runtime {

namespace {

// A group of the job's processes (a stage's tensor-parallel ranks, a pipeline) as a
// transport of its own: ranks renumbered, messages kept apart by a tag offset.
class TransportSubset : public Transport {
 public:
  TransportSubset(Transport& world, std::vector<int32_t> members, uint64_t tag_offset)
      : world_(world), members_(std::move(members)), tag_offset_(tag_offset) {
    for (size_t i = 0; i < members_.size(); ++i)
      if (members_[i] == world.rank()) rank_ = int32_t(i);
  }
  int32_t rank() const override { return rank_; }
  int32_t size() const override { return int32_t(members_.size()); }
  Status exchange(const Exchange& e) override {
    Exchange w = e;
    auto world_rank = [&](int32_t r) { return r < 0 ? -1 : members_[size_t(r)]; };
    w.send_peer = world_rank(e.send_peer);
    w.recv_peer = world_rank(e.recv_peer);
    w.tag = e.tag + tag_offset_;
    return world_.exchange(w);
  }
  void abort(const std::string& reason) override { world_.abort(reason); }

 private:
  Transport& world_;
  std::vector<int32_t> members_;
  uint64_t tag_offset_;
  int32_t rank_ = 0;
};

std::atomic<uint64_t> g_runs{0};  // makes each run's in-process group names unique

}  // namespace

std::vector<Device*> ParallelRun::local_devices() const {
  std::vector<Device*> out;
  for (const auto& s : sessions_) out.push_back(s->options().devices.at(0));
  return out;
}

ParallelRun::~ParallelRun() {
  sessions_.clear();  // executors (streams) before the channels they use
  channels_.clear();
}

Result<std::unique_ptr<ParallelRun>> ParallelRun::create(std::shared_ptr<const Model> model,
                                                         ParallelRunOptions options) {
  if (!model) return invalid_argument("parallel run: no model");
  const ParallelDegrees deg = options.degrees;
  HAL_RETURN_IF_ERROR(check_parallel_degrees(model->config(), deg));
  const int32_t n = deg.ranks();
  std::unique_ptr<ParallelRun> run(new ParallelRun());
  std::vector<int32_t> local_ranks;
  if (options.transport) {
    if (options.transport->size() != n)
      return invalid_argument(deg.to_string() + " needs " + std::to_string(n) +
                              " processes; the job has " +
                              std::to_string(options.transport->size()));
    if (options.devices.size() != 1)
      return invalid_argument("across processes each rank runs on one device; " +
                              std::to_string(options.devices.size()) + " given");
    local_ranks = {options.transport->rank()};
  } else {
    if (int32_t(options.devices.size()) != n)
      return invalid_argument(deg.to_string() + " in one process needs " + std::to_string(n) +
                              " devices (one per rank); " + std::to_string(options.devices.size()) +
                              " given");
    for (int32_t r = 0; r < n; ++r) local_ranks.push_back(r);
  }
  for (Device* d : options.devices) {
    if (!d) return invalid_argument("parallel run: a device is null");
    if (n > 1 && !Channel::available(*d))
      return unimplemented(d->id() + ": its plugin (" + d->info().backend +
                           ") offers no channels, so tensor and pipeline parallelism are "
                           "unavailable on it");
  }
  run->first_rank_ = local_ranks[0];
  const uint64_t id = ++g_runs;
  // Channels: per local rank, [tensor-parallel, pipeline] (empty handles when a degree is 1).
  std::vector<std::array<int32_t, 2>> channel_of(local_ranks.size(), {-1, -1});
  run->channels_.reserve(local_ranks.size() * 2);
  if (options.transport) {
    Transport& world = *options.transport;
    const int32_t r = world.rank(), tp_rank = r % deg.tp, pp_rank = r / deg.tp;
    auto make = [&](std::vector<int32_t> members, int32_t my_index, uint64_t offset,
                    const std::string& group) -> Result<int32_t> {
      run->subsets_.push_back(std::make_unique<TransportSubset>(world, std::move(members), offset));
      ChannelOptions co;
      co.group = group;
      co.transport = run->subsets_.back().get();
      co.timeout_s = options.timeout_s;
      HAL_ASSIGN_OR_RETURN(Channel c, Channel::create(*options.devices[0], my_index,
                                                      run->subsets_.back()->size(), co));
      run->channels_.push_back(std::move(c));
      return int32_t(run->channels_.size() - 1);
    };
    if (deg.tp > 1) {
      std::vector<int32_t> members;
      for (int32_t t = 0; t < deg.tp; ++t) members.push_back(pp_rank * deg.tp + t);
      HAL_ASSIGN_OR_RETURN(channel_of[0][0],
                           make(members, tp_rank, 100000, "tp." + std::to_string(pp_rank)));
    }
    if (deg.pp > 1) {
      std::vector<int32_t> members;
      for (int32_t q = 0; q < deg.pp; ++q) members.push_back(q * deg.tp + tp_rank);
      HAL_ASSIGN_OR_RETURN(channel_of[0][1],
                           make(members, pp_rank, 200000, "pp." + std::to_string(tp_rank)));
    }
  } else {
    ChannelOptions co;
    co.timeout_s = options.timeout_s;
    // Members of one group are created together (create_group), rank i on devices[i].
    auto make_group = [&](const std::vector<int32_t>& ranks, const std::string& group,
                          int which) -> Status {
      std::vector<Device*> devs;
      for (int32_t r : ranks) devs.push_back(options.devices[size_t(r)]);
      co.group = "run" + std::to_string(id) + "." + group;
      HAL_ASSIGN_OR_RETURN(std::vector<Channel> cs, Channel::create_group(devs, co));
      for (size_t i = 0; i < ranks.size(); ++i) {
        run->channels_.push_back(std::move(cs[i]));
        channel_of[size_t(ranks[i])][size_t(which)] = int32_t(run->channels_.size() - 1);
      }
      return ok_status();
    };
    if (deg.tp > 1)
      for (int32_t s = 0; s < deg.pp; ++s) {
        std::vector<int32_t> ranks;
        for (int32_t t = 0; t < deg.tp; ++t) ranks.push_back(s * deg.tp + t);
        HAL_RETURN_IF_ERROR(make_group(ranks, "tp." + std::to_string(s), 0));
      }
    if (deg.pp > 1)
      for (int32_t t = 0; t < deg.tp; ++t) {
        std::vector<int32_t> ranks;
        for (int32_t q = 0; q < deg.pp; ++q) ranks.push_back(q * deg.tp + t);
        HAL_RETURN_IF_ERROR(make_group(ranks, "pp." + std::to_string(t), 1));
      }
  }
  // Sessions: each rank's shard on its device with its channels.
  for (size_t i = 0; i < local_ranks.size(); ++i) {
    const int32_t r = local_ranks[i], tp_rank = r % deg.tp, pp_rank = r / deg.tp;
    HAL_ASSIGN_OR_RETURN(std::shared_ptr<const Model> shard,
                         shard_model(model, deg, tp_rank, pp_rank));
    SessionOptions so;
    so.devices = {options.transport ? options.devices[0] : options.devices[size_t(r)]};
    so.compute_dtype = options.compute_dtype;
    so.record_commands = options.record_commands;
    so.profile = options.profile;
    if (i == 0) so.progress = options.progress;
    so.channels.assign(2, nullptr);
    for (int w = 0; w < 2; ++w)
      if (channel_of[i][size_t(w)] >= 0)
        so.channels[size_t(w)] = &run->channels_[size_t(channel_of[i][size_t(w)])];
    auto session = Session::create(std::move(shard), std::move(so));
    if (!session.ok())
      return session.status().with_context("rank " + std::to_string(r) + " (" + deg.to_string() +
                                           ")");
    run->sessions_.push_back(std::move(*session));
  }
  run->options_ = std::move(options);
  return run;
}

Result<GenerationResult> ParallelRun::generate(const std::vector<std::vector<int32_t>>& prompts,
                                               const GenerationOptions& options,
                                               const RankOptionsFn& per_rank) {
  if (options.failover)
    return invalid_argument("failover does not combine with tensor or pipeline parallelism");
  const size_t n = sessions_.size();
  if (options.on_token && n > 1 && !per_rank)
    return invalid_argument(
        "one on_token callback for " + std::to_string(n) +
        " local ranks: each rank calls it on its own thread; give each its own (per_rank)");
  std::vector<Result<GenerationResult>> results;
  for (size_t i = 0; i < n; ++i) results.emplace_back(internal_error("not run"));
  std::atomic<bool> broken{false};
  auto work = [&](size_t i) {
    GenerationOptions o = options;
    if (i != 0) o.progress = nullptr;
    if (per_rank) per_rank(i, o);
    results[i] = sessions_[i]->generate(prompts, o);
    if (!results[i].ok() && !broken.exchange(true) && !options_.transport)
      // The others may wait in a collective for this rank: release them now.
      for (Channel& c : channels_)
        c.abort("rank " + std::to_string(first_rank_ + int32_t(i)) +
                " failed: " + results[i].status().to_string());
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(work, i);
  work(0);
  for (auto& t : threads) t.join();
  // The first failure that is not another rank's abort says what went wrong.
  for (auto& r : results)
    if (!r.ok() && r.status().code() != StatusCode::kAborted) return r.status();
  for (auto& r : results)
    if (!r.ok()) return r.status();
  return std::move(results[0]);
}

}  // namespace hal::runtime
