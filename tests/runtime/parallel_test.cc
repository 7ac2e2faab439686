// Tensor and pipeline parallelism below the executor: how a model is split (configs,
// weight slices whose partial products add up to the full ones, the graphs each rank
// builds) and how a split is planned and priced (plan_parallel on devices described by hand,
// links and collectives by the alpha-beta model).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "hal/collective_cost.h"
#include "hal/runtime/model_graph.h"
#include "hal/runtime/parallel.h"
#include "hal/runtime/parallel_forecast.h"

namespace {

namespace rt = hal::runtime;
using hal::DType;

constexpr uint64_t kGiB = uint64_t(1) << 30;

std::shared_ptr<const rt::Model> builtin(const std::string& name) {
  auto m = rt::make_builtin_model(name);
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return std::shared_ptr<const rt::Model>(std::move(*m));
}

std::vector<float> as_floats(const rt::HostTensor& t) {
  std::vector<float> out(size_t(t.shape.numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = hal::load_as_float(t.data, t.dtype, int64_t(i));
  return out;
}

TEST(ParallelSplit, DegreesMustDivideHeadsKvHeadsAndTheMlp) {
  const rt::ModelConfig c = builtin("llama-tiny")->config();  // 4 heads, 2 KV heads
  EXPECT_TRUE(rt::check_parallel_degrees(c, {2, 1}).ok());
  EXPECT_TRUE(rt::check_parallel_degrees(c, {4, 2}).ok());  // KV heads replicated 2x
  const hal::Status three = rt::check_parallel_degrees(c, {3, 1});
  EXPECT_EQ(three.code(), hal::StatusCode::kInvalidArgument);
  EXPECT_NE(three.message().find("attention heads (4) divisible by 3"), std::string::npos)
      << three.message();
  const hal::Status deep = rt::check_parallel_degrees(c, {1, 9});
  EXPECT_NE(deep.message().find("at least 9 layers"), std::string::npos) << deep.message();
}

TEST(ParallelSplit, ShardConfigsHoldTheirShareAndTheirStage) {
  const rt::ModelConfig c = builtin("llama-tiny")->config();
  const rt::ModelConfig s = rt::shard_config(c, {4, 2}, 3, 1);
  EXPECT_EQ(s.num_heads, c.num_heads / 4);
  EXPECT_EQ(s.num_kv_heads, 1);
  EXPECT_EQ(s.intermediate_size, c.intermediate_size / 4);
  EXPECT_EQ(s.head_dim, c.head_dim);
  EXPECT_EQ(s.shard.tp_size, 4);
  EXPECT_EQ(s.shard.pp_rank, 1);
  EXPECT_EQ(s.shard.layer_begin, c.num_layers / 2);
  EXPECT_EQ(s.shard.layer_end, c.num_layers);
}

// The tensor-parallel slices of one MLP, multiplied out per rank and summed, give the full
// MLP's output: the all-reduce the graph inserts completes exactly what one device computes.
TEST(ParallelSplit, PartialMlpOutputsAddUpToTheFullOne) {
  for (const char* name : {"gpt2-tiny", "llama-tiny"}) {
    auto full = builtin(name);
    const rt::ModelConfig& c = full->config();
    const bool gpt2 = c.family == rt::ModelFamily::kGpt2;
    const std::string up = gpt2 ? "h.1.mlp.c_fc.weight" : "model.layers.1.mlp.up_proj.weight";
    const std::string down = gpt2 ? "h.1.mlp.c_proj.weight" : "model.layers.1.mlp.down_proj.weight";
    const int64_t d = c.hidden_size, f = c.intermediate_size;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> x(static_cast<size_t>(d));
    for (float& v : x) v = u(rng);
    // h = x @ Wup (gpt2 [d, f]; llama [f, d]^T), then y = h @ Wdown.
    auto mlp = [&](const rt::Model& m, int64_t fl) {
      const std::vector<float> wu = as_floats(*m.weight(up)), wd = as_floats(*m.weight(down));
      std::vector<double> h(static_cast<size_t>(fl), 0), y(static_cast<size_t>(d), 0);
      for (int64_t j = 0; j < fl; ++j)
        for (int64_t k = 0; k < d; ++k)
          h[size_t(j)] +=
              double(x[size_t(k)]) * (gpt2 ? wu[size_t(k * fl + j)] : wu[size_t(j * d + k)]);
      for (int64_t o = 0; o < d; ++o)
        for (int64_t j = 0; j < fl; ++j)
          y[size_t(o)] += h[size_t(j)] * (gpt2 ? wd[size_t(j * d + o)] : wd[size_t(o * fl + j)]);
      return y;
    };
    const std::vector<double> want = mlp(*full, f);
    for (int32_t tp : {2, 4}) {
      std::vector<double> sum(static_cast<size_t>(d), 0);
      for (int32_t r = 0; r < tp; ++r) {
        auto shard = rt::shard_model(full, {tp, 1}, r, 0);
        ASSERT_TRUE(shard.ok()) << shard.status().to_string();
        EXPECT_EQ((*shard)->config().intermediate_size, f / tp);
        const std::vector<double> part = mlp(**shard, f / tp);
        for (int64_t o = 0; o < d; ++o) sum[size_t(o)] += part[size_t(o)];
      }
      for (int64_t o = 0; o < d; ++o)
        ASSERT_NEAR(sum[size_t(o)], want[size_t(o)], 1e-9 + 1e-6 * std::abs(want[size_t(o)]))
            << name << " tp " << tp << " output " << o;
    }
  }
}

TEST(ParallelSplit, OutputBiasesAreAddedOnceAndKvHeadsFollowTheirQueryHeads) {
  auto full = builtin("gpt2-tiny");
  auto r0 = rt::shard_model(full, {2, 1}, 0, 0), r1 = rt::shard_model(full, {2, 1}, 1, 0);
  ASSERT_TRUE(r0.ok() && r1.ok());
  const std::vector<float> b = as_floats(*full->weight("h.0.attn.c_proj.bias"));
  EXPECT_EQ(as_floats(*(*r0)->weight("h.0.attn.c_proj.bias")), b);
  for (float v : as_floats(*(*r1)->weight("h.0.attn.c_proj.bias"))) EXPECT_EQ(v, 0.f);
  // c_attn: rank 1 holds the second half of each of q, k and v.
  const rt::ModelConfig& c = full->config();
  const int64_t d = c.hidden_size, half = d / 2;
  const std::vector<float> w = as_floats(*full->weight("h.0.attn.c_attn.weight"));
  const std::vector<float> w1 = as_floats(*(*r1)->weight("h.0.attn.c_attn.weight"));
  ASSERT_EQ(w1.size(), size_t(d * 3 * half));
  for (int part = 0; part < 3; ++part)
    EXPECT_EQ(w1[size_t(part * half)], w[size_t(part * d + half)]) << "row 0, part " << part;

  // llama-tiny, 4 heads over 2 KV heads, TP 4: ranks 2 and 3 share KV head 1.
  auto llama = builtin("llama-tiny");
  const rt::ModelConfig& lc = llama->config();
  auto l3 = rt::shard_model(llama, {4, 1}, 3, 0);
  ASSERT_TRUE(l3.ok());
  const std::vector<float> k = as_floats(*llama->weight("model.layers.0.self_attn.k_proj.weight"));
  const std::vector<float> k3 = as_floats(*(*l3)->weight("model.layers.0.self_attn.k_proj.weight"));
  ASSERT_EQ(k3.size(), size_t(lc.head_dim * lc.hidden_size));
  EXPECT_TRUE(std::equal(k3.begin(), k3.end(), k.begin() + lc.head_dim * lc.hidden_size));
}

TEST(ParallelGraphs, TensorParallelRanksAllReduceTwicePerLayer) {
  const rt::ModelConfig c = builtin("llama-tiny")->config();
  rt::ModelGraphShape shape;
  shape.cache_len = 16;
  auto g = rt::build_model_graph(rt::shard_config(c, {2, 1}, 0, 0), shape);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  int all_reduces = 0;
  for (const rt::Node& n : g->graph->nodes())
    if (n.kind == rt::NodeKind::kCollective) {
      EXPECT_EQ(n.collective, hal::CollectiveKind::kAllReduce);
      EXPECT_EQ(n.channel, rt::kTensorParallelChannel);
      ++all_reduces;
    }
  EXPECT_EQ(all_reduces, 2 * c.num_layers);
}

TEST(ParallelGraphs, PipelineStagesReceiveSendAndShareTheLogits) {
  const rt::ModelConfig c = builtin("gpt2-tiny")->config();
  rt::ModelGraphShape shape;
  shape.batch = 2;
  shape.seq = 3;
  shape.cache_len = 16;
  for (int32_t stage = 0; stage < 2; ++stage) {
    auto g = rt::build_model_graph(rt::shard_config(c, {1, 2}, 0, stage), shape);
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    std::vector<hal::CollectiveKind> kinds;
    bool head = false, embed = false;
    for (const rt::Node& n : g->graph->nodes()) {
      if (n.kind == rt::NodeKind::kCollective) kinds.push_back(n.collective);
      head |= n.name == "lm_head";
      embed |= n.name == "wte";
    }
    using K = hal::CollectiveKind;
    const std::vector<K> want = stage == 0 ? std::vector<K>{K::kSend, K::kBroadcast}
                                           : std::vector<K>{K::kRecv, K::kBroadcast};
    EXPECT_EQ(kinds, want);
    EXPECT_EQ(head, stage == 1);
    EXPECT_EQ(embed, stage == 0);
    EXPECT_EQ(g->k_caches.size(), size_t(c.num_layers / 2));  // its own layers' caches
    const hal::TensorDesc& logits = g->graph->value(g->logits).desc;
    EXPECT_EQ(logits.shape, (hal::Shape{2, c.vocab_size}));
  }
}

// ---- planning -----------------------------------------------------------------------

hal::DeviceInfo die(int i, uint64_t memory) {
  hal::DeviceInfo info;
  info.id = "npu:" + std::to_string(i);
  info.id_prefix = "npu";
  info.backend = "parallel_test";
  info.kind = hal::DeviceKind::kNpu;
  info.name = "test-die";
  info.memory_bytes = memory;
  info.memory_bandwidth_bytes_per_s = 256e9;
  info.peak_flops = {{DType::kBF16, 32e12}, {DType::kF32, 32e12}, {DType::kI8, 128e12}};
  info.launch_overhead_s = 3e-6;
  info.links.push_back({"host", -1, "pcie-gen5-x16", 50e9, 2e-6});
  return info;
}

std::vector<rt::PlanDevice> dies(int n, uint64_t memory) {
  std::vector<rt::PlanDevice> out;
  for (int i = 0; i < n; ++i) out.push_back(rt::PlanDevice{die(i, memory), {}, {}, {}});
  // A card of all n dies behind one switch: 50 GB/s, 2 us between any two.
  for (auto& d : out)
    for (int j = 0; j < n; ++j)
      if ("npu:" + std::to_string(j) != d.info.id)
        d.info.links.push_back({"npu:" + std::to_string(j), j, "pcie-switch", 50e9, 2e-6});
  return out;
}

rt::ParallelForecastRequest request(const std::string& model, DType dtype) {
  rt::ParallelForecastRequest r;
  auto c = rt::resolve_model_config(model);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  r.base.config = *c;
  r.base.model_name = model;
  r.base.prompt_len = 64;
  r.base.max_new_tokens = 64;
  r.base.weight_dtype = dtype;
  r.base.calibration.load = false;
  return r;
}

TEST(ParallelPlanner, AllReducesArePricedOverTheGroupsLinks) {
  rt::ParallelForecastRequest r = request("llama-3-8b", DType::kBF16);
  r.tp = 4;
  r.pp = 1;
  auto p = rt::forecast_parallel(r, dies(4, 16 * kGiB));
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  ASSERT_EQ(p->stages.size(), 1u);
  EXPECT_EQ(p->all_reduces_per_step, 2 * 32);
  // One all-reduce of a token's hidden state (4096 bf16): the model's own formula, plus
  // the launch overhead.
  const hal::CollectiveShape s{hal::CollectiveKind::kAllReduce, hal::Reduction::kSum, DType::kBF16,
                               4096, 0};
  const hal::CollectiveTiming t = hal::time_collective(s, 4, [](int32_t, int32_t) {
    return hal::CollectiveLinkCost{2e-6, 50e9, hal::LinkClass::kPeer};
  });
  EXPECT_NEAR(p->all_reduce_s_per_step, 64 * (3e-6 + t.link_s), 1e-9);
  EXPECT_GT(p->decode_step_s, p->all_reduce_s_per_step);
  EXPECT_NEAR(p->decode_tokens_per_s, 1.0 / p->decode_step_s, 1e-9);
  EXPECT_NE(p->stages[0].tp_link.find("pcie-switch"), std::string::npos) << p->stages[0].tp_link;
}

TEST(ParallelPlanner, ChoosesTheFastestSplitThatFitsAndSaysWhyOthersDoNot) {
  rt::ParallelForecastRequest r = request("llama-3-8b", DType::kBF16);  // 15 GiB of weights
  auto p = rt::forecast_parallel(r, dies(4, 8 * kGiB));
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_TRUE(p->chosen);
  bool refused_for_memory = false, refused_for_heads = false;
  for (const rt::ParallelCandidate& c : p->candidates) {
    if (c.feasible) {
      EXPECT_LE(c.decode_tokens_per_s, p->decode_tokens_per_s * 1.01);
    }
    refused_for_memory |= c.why_not.find("out of memory") != std::string::npos ||
                          c.why_not.find("needs") != std::string::npos;
    refused_for_heads |= c.why_not.find("divisible by 3") != std::string::npos;
  }
  EXPECT_TRUE(refused_for_memory);
  EXPECT_TRUE(refused_for_heads);
  EXPECT_GE(p->degrees.ranks(), 2);  // one 8 GiB die cannot hold it
}

TEST(ParallelPlanner, AModelTooBigForAllDevicesNamesHowManyItNeeds) {
  rt::ParallelForecastRequest r = request("llama-3-70b", DType::kBF16);
  auto p = rt::forecast_parallel(r, dies(8, 16 * kGiB));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), hal::StatusCode::kOutOfMemory);
  EXPECT_NE(p.status().message().find("at least 9 devices"), std::string::npos)
      << p.status().message();
}

TEST(ParallelPlanner, StagesOnTwoHostsTalkOverTheNetwork) {
  rt::ParallelForecastRequest r = request("llama-3-8b", DType::kBF16);
  r.tp = 2;
  r.pp = 2;
  r.host_of = {0, 0, 1, 1};
  r.network = {"", -1, "test-net", 10e9, 10e-6};
  auto p = rt::forecast_parallel(r, dies(4, 16 * kGiB));
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->hosts, 2);
  ASSERT_EQ(p->stages.size(), 2u);
  EXPECT_NE(p->stages[0].pipeline_link.find("network"), std::string::npos)
      << p->stages[0].pipeline_link;
  EXPECT_NE(p->stages[0].tp_link.find("pcie-switch"), std::string::npos);  // TP stays on its host
  EXPECT_NEAR(p->decode_step_s, p->stages[0].decode_s + p->stages[1].decode_s, 1e-12);
}

}  // namespace
