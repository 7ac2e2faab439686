// Schedule quality tables (markdown), for the closing note:
//   1. SLR (makespan / sum of minimum costs on the critical path) of every algorithm on
//      random DAGs generated as in Topcuoglu et al. 2002, by size, CCR, heterogeneity
//      (beta), out-degree and shape (alpha); contention-free links (the paper's model)
//      and serialized links (ours by default).
//   2. Optimality gap against exhaustive search on small graphs.
//   3. Transformer task graphs on an NPU + CPU pair, with the model fitting the NPU and
//      not fitting it (split by layers).
//   4. Scheduling time vs graph size up to 100,000 tasks.
//
//   hal_scheduler_quality [--quick] [--only slr|gap|transformer|time]
// --quick runs a reduced grid (one seed, fewer sizes) in a few seconds.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "hal/scheduler/random_dag.h"
#include "hal/scheduler/scheduler.h"

using namespace hal::scheduler;

namespace {

const std::vector<Algorithm> kAlgorithms = {Algorithm::kAuto,         Algorithm::kHeft,
                                            Algorithm::kPeft,         Algorithm::kLookahead,
                                            Algorithm::kAllOnFastest, Algorithm::kRoundRobin};

struct Mean {
  double sum = 0;
  int n = 0;
  void add(double v) {
    sum += v;
    ++n;
  }
  double value() const { return n ? sum / n : 0; }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// SLR per algorithm, grouped by one parameter.
void slr_tables(bool quick, LinkModel links) {
  std::vector<int32_t> sizes = {20, 50, 100, 200, 500, 1000};
  std::vector<double> ccrs = {0.1, 1.0, 10.0};
  std::vector<double> degrees = {1, 3, 5};
  std::vector<double> betas = {0.1, 0.5, 1.0};
  std::vector<double> alphas = {0.5, 1.0, 2.0};
  int seeds = 2;
  if (quick) {
    sizes = {20, 100, 500};
    degrees = {3};
    alphas = {1.0};
    seeds = 1;
  }
  // group name -> key -> algorithm -> mean SLR
  std::map<std::string, std::map<double, std::map<Algorithm, Mean>>> groups;
  Mean improvement;  // auto vs HEFT, percent of HEFT's makespan
  int better = 0, equal = 0, graphs = 0;
  uint64_t seed = 1;
  for (int32_t v : sizes)
    for (double ccr : ccrs)
      for (double deg : degrees)
        for (double beta : betas)
          for (double alpha : alphas)
            for (int rep = 0; rep < seeds; ++rep) {
              RandomDagParams p;
              p.tasks = v;
              p.ccr = ccr;
              p.out_degree = deg;
              p.beta = beta;
              p.alpha = alpha;
              p.processors = 4;
              p.seed = seed++;
              auto pb = random_dag(p);
              if (!pb.ok()) {
                std::fprintf(stderr, "%s\n", pb.status().to_string().c_str());
                continue;
              }
              const double cp = critical_path_min_cost(*pb);
              std::map<Algorithm, double> makespan;
              for (Algorithm a : kAlgorithms) {
                Options o;
                o.algorithm = a;
                o.link_model = links;
                auto s = schedule(*pb, o);
                if (!s.ok()) {
                  std::fprintf(stderr, "%s: %s\n", std::string(algorithm_name(a)).c_str(),
                               s.status().to_string().c_str());
                  continue;
                }
                makespan[a] = s->makespan;
                const double slr = s->makespan / cp;
                groups["tasks"][v][a].add(slr);
                groups["CCR"][ccr][a].add(slr);
                groups["out-degree"][deg][a].add(slr);
                groups["beta"][beta][a].add(slr);
                groups["alpha"][alpha][a].add(slr);
                groups["all"][0][a].add(slr);
              }
              ++graphs;
              const double h = makespan[Algorithm::kHeft], b = makespan[Algorithm::kAuto];
              if (b < h * (1 - 1e-9))
                ++better;
              else if (b <= h * (1 + 1e-9))
                ++equal;
              improvement.add(100.0 * (h - b) / h);
            }
  std::printf("\n### Mean SLR on random DAGs, %s links (%d graphs, 4 devices)\n",
              links == LinkModel::kContentionFree ? "contention-free (the paper's model)"
                                                  : "serialized (one queue per link)",
              graphs);
  for (const char* group : {"tasks", "CCR", "beta", "out-degree", "alpha", "all"}) {
    if (groups[group].size() < 2 && std::strcmp(group, "all") != 0) continue;
    std::printf("\n| %s |", group);
    for (Algorithm a : kAlgorithms) std::printf(" %s |", std::string(algorithm_name(a)).c_str());
    std::printf("\n|---|");
    for (size_t i = 0; i < kAlgorithms.size(); ++i) std::printf("---|");
    std::printf("\n");
    for (const auto& [key, per] : groups[group]) {
      if (std::strcmp(group, "all") == 0)
        std::printf("| all |");
      else
        std::printf("| %g |", key);
      for (Algorithm a : kAlgorithms) {
        auto it = per.find(a);
        std::printf(" %.3f |", it == per.end() ? 0.0 : it->second.value());
      }
      std::printf("\n");
    }
  }
  std::printf(
      "\nauto vs HEFT: shorter on %d of %d graphs, equal on %d, never longer; mean "
      "makespan reduction %.2f%%\n",
      better, graphs, equal, improvement.value());
}

void gap_table(bool quick) {
  struct Row {
    Mean gap;
    double max_gap = 0;
    int optimal = 0;
    int n = 0;
  };
  std::map<Algorithm, Row> rows;
  const std::vector<Algorithm> algos = {Algorithm::kAuto,         Algorithm::kHeft,
                                        Algorithm::kPeft,         Algorithm::kLookahead,
                                        Algorithm::kAllOnFastest, Algorithm::kRoundRobin};
  int graphs = 0, unproved = 0;
  double search_s = 0;
  uint64_t seed = 1000;
  const int seeds = quick ? 3 : 10;
  for (int32_t v : {6, 8, 10})
    for (int32_t procs : {2, 3})
      for (double ccr : {0.1, 1.0, 5.0})
        for (int rep = 0; rep < seeds; ++rep) {
          RandomDagParams p;
          p.tasks = v;
          p.processors = procs;
          p.ccr = ccr;
          p.beta = 1.0;
          p.seed = seed++;
          auto pb = random_dag(p);
          if (!pb.ok()) continue;
          Options ex;
          ex.algorithm = Algorithm::kExhaustive;
          ex.link_model = LinkModel::kContentionFree;
          const auto t0 = std::chrono::steady_clock::now();
          auto opt = schedule(*pb, ex);
          search_s += seconds_since(t0);
          if (!opt.ok()) {
            ++unproved;
            continue;
          }
          if (!opt->proved_optimal) ++unproved;
          ++graphs;
          for (Algorithm a : algos) {
            Options o;
            o.algorithm = a;
            o.link_model = LinkModel::kContentionFree;
            auto s = schedule(*pb, o);
            if (!s.ok()) continue;
            const double gap = 100.0 * (s->makespan / opt->makespan - 1);
            Row& r = rows[a];
            r.gap.add(gap);
            r.max_gap = std::max(r.max_gap, gap);
            r.optimal += gap < 1e-7;
            ++r.n;
          }
        }
  std::printf(
      "\n### Optimality gap vs exhaustive search (%d graphs: 6/8/10 tasks, 2-3 devices, "
      "CCR 0.1/1/5, contention-free; search %.2f s in all, %d not proved)\n\n",
      graphs, search_s, unproved);
  std::printf("| algorithm | mean gap | max gap | optimal |\n|---|---|---|---|\n");
  for (Algorithm a : algos) {
    const Row& r = rows[a];
    std::printf("| %s | %.2f%% | %.1f%% | %d/%d |\n", std::string(algorithm_name(a)).c_str(),
                r.gap.value(), r.max_gap, r.optimal, r.n);
  }
}

// An ATOM-like NPU (hw_facts.md: 32 TFLOPS f16, 256 GB/s GDDR6, 16 GB, PCIe Gen5 x16 at
// ~50 GB/s effective) and a server CPU (2 TFLOP/s f32, 100 GB/s DDR5, 256 GiB).
CostModel npu_cpu(uint64_t npu_bytes) {
  hal::DeviceInfo npu;
  npu.id = "npu:0";
  npu.backend = "npu_sim";
  npu.name = "atom-like";
  npu.memory_bytes = npu_bytes;
  npu.memory_bandwidth_bytes_per_s = 256e9;
  npu.peak_flops[hal::DType::kF16] = 32e12;
  npu.launch_overhead_s = 3e-6;
  npu.links.push_back(hal::LinkInfo{"host", -1, "pcie-gen5-x16", 50e9, 2e-6});
  hal::DeviceInfo cpu;
  cpu.id = "cpu:0";
  cpu.backend = "cpu";
  cpu.name = "server-cpu";
  cpu.memory_bytes = 256ull << 30;
  cpu.memory_bandwidth_bytes_per_s = 100e9;
  cpu.peak_flops[hal::DType::kF32] = 2e12;
  cpu.launch_overhead_s = 2e-6;
  cpu.links.push_back(hal::LinkInfo{"host", -1, "memory-bus", 100e9, 1e-7});
  return CostModel::from_infos({npu, cpu}, CalibrationOptions{false, {}});
}

void transformer_table() {
  struct Model {
    const char* name;
    TransformerShape shape;
  };
  TransformerShape gpt2;  // 124M
  TransformerShape gpt2xl = gpt2;
  gpt2xl.layers = 48;
  gpt2xl.hidden = 1600;
  gpt2xl.heads = 25;
  gpt2xl.ffn = 6400;
  TransformerShape big = gpt2;  // ~7B-shaped (MLP as GPT's: up + down)
  big.layers = 32;
  big.hidden = 4096;
  big.heads = 32;
  big.ffn = 16384;
  big.vocab = 32000;
  const std::vector<Model> models = {
      {"gpt2 (124M)", gpt2}, {"gpt2-xl (1.6B)", gpt2xl}, {"7B-shaped", big}};
  const std::vector<Algorithm> algos = {Algorithm::kAuto,         Algorithm::kRefine,
                                        Algorithm::kHeft,         Algorithm::kPeft,
                                        Algorithm::kLookahead,    Algorithm::kLayerPartition,
                                        Algorithm::kAllOnFastest, Algorithm::kRoundRobin};
  std::printf(
      "\n### Transformer graphs on an ATOM-like NPU + CPU (serialized links; predicted "
      "makespan in ms, [transfers])\n\n| model | phase | NPU memory |");
  for (Algorithm a : algos) std::printf(" %s |", std::string(algorithm_name(a)).c_str());
  std::printf("\n|---|---|---|");
  for (size_t i = 0; i < algos.size(); ++i) std::printf("---|");
  std::printf("\n");
  for (const Model& m : models)
    for (int phase = 0; phase < 2; ++phase) {
      TransformerShape s = m.shape;
      s.new_tokens = phase == 0 ? 1 : 128;
      s.context = 1024;
      TaskGraph probe = transformer_task_graph(s);
      (void)probe.finalize();
      const uint64_t total = probe.total_resident_bytes();
      for (int fit = 0; fit < 2; ++fit) {
        const uint64_t npu_bytes = fit == 0 ? (16ull << 30) : total * 55 / 100;
        if (fit == 0 && total > npu_bytes) continue;
        auto pb = Problem::from_cost_model(transformer_task_graph(s), npu_cpu(npu_bytes));
        if (!pb.ok()) continue;
        char mem[64];
        std::snprintf(mem, sizeof mem, "%.1f GiB (%s)", double(npu_bytes) / double(1ull << 30),
                      fit == 0 ? "fits" : "55% of weights");
        std::printf("| %s | %s | %s |", m.name, phase == 0 ? "decode" : "prefill 128", mem);
        for (Algorithm a : algos) {
          Options o;
          o.algorithm = a;
          auto sch = schedule(*pb, o);
          if (!sch.ok())
            std::printf(" failed |");
          else
            std::printf(" %.3f [%zu] |", sch->makespan * 1e3, sch->transfers.size());
        }
        std::printf("\n");
      }
    }
}

void time_table(bool quick) {
  std::printf(
      "\n### Scheduling time (wall, this machine; serialized links with insertion)\n\n"
      "| graph | tasks | edges | heft | peft | auto | all-on-fastest |\n"
      "|---|---|---|---|---|---|---|\n");
  auto row = [&](const char* name, const Problem& pb) {
    std::printf("| %s | %d | %zu |", name, pb.task_count(), pb.graph().edge_count());
    for (Algorithm a :
         {Algorithm::kHeft, Algorithm::kPeft, Algorithm::kAuto, Algorithm::kAllOnFastest}) {
      Options o;
      o.algorithm = a;
      const int reps = pb.task_count() >= 100000 ? 3 : 5;
      std::vector<double> t;
      for (int i = 0; i < reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        auto s = schedule(pb, o);
        t.push_back(seconds_since(t0));
        if (!s.ok()) break;
      }
      std::sort(t.begin(), t.end());
      std::printf(" %.1f ms |", t[t.size() / 2] * 1e3);
    }
    std::printf("\n");
  };
  std::vector<int32_t> sizes = {1000, 10000, 100000};
  if (quick) sizes = {1000, 10000};
  for (int32_t v : sizes) {
    RandomDagParams p;
    p.tasks = v;
    p.beta = 1.0;
    p.processors = 4;
    p.seed = 42;
    auto pb = random_dag(p);
    if (pb.ok()) row("random DAG, 4 devices, CCR 1", *pb);
  }
  for (int32_t layers : quick ? std::vector<int32_t>{1000} : std::vector<int32_t>{1000, 10000}) {
    TransformerShape s;
    s.layers = layers;
    auto pb = Problem::from_cost_model(transformer_task_graph(s), npu_cpu(256ull << 30));
    if (pb.ok())
      row(layers == 1000 ? "transformer, 1000 layers, NPU+CPU"
                         : "transformer, 10000 layers, NPU+CPU",
          *pb);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--only slr|gap|transformer|time]\n", argv[0]);
      return 2;
    }
  }
  if (!only.empty() && only != "slr" && only != "gap" && only != "transformer" && only != "time") {
    std::fprintf(stderr, "unknown section '%s' (slr, gap, transformer, time)\n", only.c_str());
    return 2;
  }
  if (only.empty() || only == "slr") {
    slr_tables(quick, LinkModel::kContentionFree);
    slr_tables(quick, LinkModel::kSerialized);
  }
  if (only.empty() || only == "gap") gap_table(quick);
  if (only.empty() || only == "transformer") transformer_table();
  if (only.empty() || only == "time") time_table(quick);
  return 0;
}
