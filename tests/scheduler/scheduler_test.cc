// Schedules: the HEFT paper's example, the invariants of every algorithm's schedules,
// optimality against exhaustive search (itself checked against plain enumeration),
// transfers/streams/events, fallbacks and strict placement, pins, memory capacity and
// layer splitting.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <set>

#include "hal/scheduler/random_dag.h"
#include "hal/scheduler/scheduler.h"

namespace hal::scheduler {
namespace {

Options with(Algorithm a, LinkModel links = LinkModel::kSerialized, bool insertion = true) {
  Options o;
  o.algorithm = a;
  o.link_model = links;
  o.insertion = insertion;
  return o;
}

// A problem from explicit costs [task][device], identical links.
Problem make_problem(TaskGraph g, const std::vector<std::vector<double>>& cost,
                     double bandwidth = 1.0, double latency = 0.0,
                     std::vector<uint64_t> capacity = {}) {
  const size_t p = cost.empty() ? 1 : cost[0].size();
  std::vector<DeviceSlot> devices;
  for (size_t d = 0; d < p; ++d)
    devices.push_back(
        {std::string("dev:").append(std::to_string(d)), capacity.empty() ? 0 : capacity[d]});
  std::vector<double> flat;
  for (const auto& row : cost) flat.insert(flat.end(), row.begin(), row.end());
  std::vector<LinkCost> links(p * p, LinkCost{"test", bandwidth, latency});
  auto pb =
      Problem::from_costs(std::move(g), std::move(devices), std::move(flat), std::move(links));
  EXPECT_TRUE(pb.ok()) << pb.status().to_string();
  return std::move(pb).value();
}

// ---- the paper's example ------------------------------------------------------------

TEST(Heft, PaperExampleReproducesThePublishedSchedule) {
  const Problem pb = heft_paper_example();
  auto s = schedule(pb, with(Algorithm::kHeft, LinkModel::kContentionFree));
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_DOUBLE_EQ(s->makespan, 80.0);
  // Fig. 4(a) of Topcuoglu et al. 2002: (processor, start, finish) of n1..n10.
  const struct {
    int device;
    double start, finish;
  } expected[10] = {{2, 0, 9},   {0, 27, 40}, {2, 9, 28},  {1, 18, 26}, {2, 28, 38},
                    {1, 26, 42}, {2, 38, 49}, {0, 57, 62}, {1, 56, 68}, {1, 73, 80}};
  for (int t = 0; t < 10; ++t) {
    EXPECT_EQ(s->tasks[size_t(t)].device, expected[t].device) << "n" << t + 1;
    EXPECT_DOUBLE_EQ(s->tasks[size_t(t)].start, expected[t].start) << "n" << t + 1;
    EXPECT_DOUBLE_EQ(s->tasks[size_t(t)].finish, expected[t].finish) << "n" << t + 1;
  }
  EXPECT_TRUE(verify_schedule(pb, *s, with(Algorithm::kHeft, LinkModel::kContentionFree)).ok());
  // The lower bound of the SLR: n1 n4 n9 n10... with minimum costs on the critical path.
  // SLR's denominator: n1 n2 n9 n10 at their minimum costs, 9 + 13 + 12 + 7.
  EXPECT_DOUBLE_EQ(critical_path_min_cost(pb), 41.0);
  EXPECT_DOUBLE_EQ(schedule_length_ratio(pb, *s), 80.0 / 41.0);
  EXPECT_GE(schedule_length_ratio(pb, *s), 1.0);
}

TEST(Heft, PaperExampleOptimumAndOtherAlgorithms) {
  const Problem pb = heft_paper_example();
  const Options exhaustive = with(Algorithm::kExhaustive, LinkModel::kContentionFree);
  auto opt = schedule(pb, exhaustive);
  ASSERT_TRUE(opt.ok()) << opt.status().to_string();
  EXPECT_TRUE(opt->proved_optimal);
  EXPECT_LE(opt->makespan, 80.0);
  EXPECT_TRUE(verify_schedule(pb, *opt, exhaustive).ok());
  for (Algorithm a : {Algorithm::kPeft, Algorithm::kLookahead, Algorithm::kAuto,
                      Algorithm::kAllOnFastest, Algorithm::kRoundRobin}) {
    auto s = schedule(pb, with(a, LinkModel::kContentionFree));
    ASSERT_TRUE(s.ok()) << algorithm_name(a);
    EXPECT_GE(s->makespan, opt->makespan - 1e-9) << algorithm_name(a);
    if (a == Algorithm::kAuto) {
      EXPECT_LE(s->makespan, 80.0);
    }
  }
}

// ---- invariants over random graphs -----------------------------------------------------

TEST(Invariants, EveryAlgorithmOnRandomGraphs) {
  int checked = 0;
  for (double ccr : {0.1, 1.0, 10.0})
    for (int32_t tasks : {30, 120})
      for (uint64_t seed : {1, 2}) {
        RandomDagParams prm;
        prm.tasks = tasks;
        prm.ccr = ccr;
        prm.beta = 1.0;
        prm.processors = 3;
        prm.seed = seed;
        auto pb = random_dag(prm);
        ASSERT_TRUE(pb.ok());
        const double lower = critical_path_min_cost(*pb);
        for (LinkModel lm : {LinkModel::kSerialized, LinkModel::kContentionFree})
          for (bool insertion : {true, false})
            for (Algorithm a :
                 {Algorithm::kHeft, Algorithm::kPeft, Algorithm::kLookahead,
                  Algorithm::kAllOnFastest, Algorithm::kRoundRobin, Algorithm::kAuto}) {
              const Options o = with(a, lm, insertion);
              auto s = schedule(*pb, o);
              ASSERT_TRUE(s.ok()) << algorithm_name(a) << ": " << s.status().to_string();
              const Status v = verify_schedule(*pb, *s, o);
              EXPECT_TRUE(v.ok()) << algorithm_name(a) << " ccr " << ccr << " seed " << seed << ": "
                                  << v.to_string();
              EXPECT_GE(s->makespan, lower * (1 - 1e-12));
              ++checked;
            }
      }
  EXPECT_EQ(checked, 3 * 2 * 2 * 2 * 2 * 6);
}

TEST(Invariants, AutoIsNeverWorseThanHeft) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    RandomDagParams prm;
    prm.tasks = 60;
    prm.ccr = seed % 3 == 0 ? 10.0 : (seed % 3 == 1 ? 1.0 : 0.1);
    prm.beta = 1.5;
    prm.processors = 4;
    prm.seed = seed;
    auto pb = random_dag(prm);
    ASSERT_TRUE(pb.ok());
    for (LinkModel lm : {LinkModel::kSerialized, LinkModel::kContentionFree}) {
      auto heft = schedule(*pb, with(Algorithm::kHeft, lm));
      auto best = schedule(*pb, with(Algorithm::kAuto, lm));
      ASSERT_TRUE(heft.ok() && best.ok());
      EXPECT_LE(best->makespan, heft->makespan);
      ASSERT_GE(best->candidates.size(), 4u);
      EXPECT_EQ(best->candidates[0].algorithm, Algorithm::kHeft);
      EXPECT_DOUBLE_EQ(best->candidates[0].makespan, heft->makespan);
      double min_candidate = kInfinity;
      for (const CandidateResult& c : best->candidates)
        min_candidate = std::min(min_candidate, c.makespan);
      EXPECT_DOUBLE_EQ(best->makespan, min_candidate);
    }
  }
}

// verify_schedule must catch broken schedules, or the invariant tests prove nothing.
TEST(Invariants, VerifyCatchesBrokenSchedules) {
  RandomDagParams prm;
  prm.tasks = 40;
  prm.ccr = 1;
  prm.seed = 5;
  auto pb = random_dag(prm);
  ASSERT_TRUE(pb.ok());
  const Options o = with(Algorithm::kHeft);
  auto good = schedule(*pb, o);
  ASSERT_TRUE(good.ok());
  ASSERT_TRUE(verify_schedule(*pb, *good, o).ok());
  ASSERT_FALSE(good->transfers.empty());
  ASSERT_FALSE(good->events.empty());

  auto broken = [&](const std::function<void(Schedule&)>& edit) {
    Schedule s = *good;
    edit(s);
    return verify_schedule(*pb, s, o);
  };
  // A task starting before its input.
  const Edge& e = pb->graph().edge(0);
  EXPECT_FALSE(broken([&](Schedule& s) {
                 const double shift = s.tasks[size_t(e.to)].start;
                 s.tasks[size_t(e.to)].start -= shift + 1;
                 s.tasks[size_t(e.to)].finish -= shift + 1;
               }).ok());
  // A wrong duration.
  EXPECT_FALSE(broken([&](Schedule& s) { s.tasks[0].finish += 1; }).ok());
  // A transfer removed.
  EXPECT_FALSE(broken([&](Schedule& s) { s.transfers.pop_back(); }).ok());
  // A transfer too short for its link.
  EXPECT_FALSE(broken([&](Schedule& s) { s.transfers[0].finish = s.transfers[0].start; }).ok());
  // A missing event.
  EXPECT_FALSE(broken([&](Schedule& s) { s.waits.erase(s.waits.begin()); }).ok());
  // Two tasks overlapping on a device: move a task onto another's slot.
  EXPECT_FALSE(broken([&](Schedule& s) {
                 const auto& order = s.stream_order[size_t(s.compute_stream(0))];
                 ASSERT_GE(order.size(), 2u);
                 TaskPlacement& b = s.tasks[size_t(order[1].index)];
                 const TaskPlacement& a = s.tasks[size_t(order[0].index)];
                 const double d = b.finish - b.start;
                 b.start = a.start;
                 b.finish = a.start + d;
               }).ok());
  // The makespan misreported.
  EXPECT_FALSE(broken([&](Schedule& s) { s.makespan *= 0.5; }).ok());
  // The issue order reversed.
  EXPECT_FALSE(
      broken([&](Schedule& s) { std::reverse(s.issue_order.begin(), s.issue_order.end()); }).ok());
}

// ---- exhaustive search -------------------------------------------------------------

// Independent reference for tiny graphs: every topological order x every assignment,
// each task started as early as its device (in order) and inputs allow.
double brute_force_optimum(const Problem& pb) {
  const TaskGraph& g = pb.graph();
  const int32_t n = pb.task_count(), p = pb.device_count();
  std::vector<TaskId> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  double best = kInfinity;
  do {
    std::vector<int32_t> pos(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) pos[size_t(order[size_t(i)])] = i;
    bool topological = true;
    for (const Edge& e : g.edges())
      topological = topological && pos[size_t(e.from)] < pos[size_t(e.to)];
    if (!topological) continue;
    int64_t combos = 1;
    for (int32_t i = 0; i < n; ++i) combos *= p;
    for (int64_t code = 0; code < combos; ++code) {
      std::vector<int32_t> dev(static_cast<size_t>(n));
      int64_t c = code;
      for (int32_t i = 0; i < n; ++i, c /= p) dev[size_t(i)] = int32_t(c % p);
      std::vector<double> free_at(static_cast<size_t>(p), 0), finish(size_t(n), 0);
      double makespan = 0;
      for (TaskId t : order) {
        double s = free_at[size_t(dev[size_t(t)])];
        for (int32_t ei : g.in_edges(t)) {
          const Edge& ed = g.edge(ei);
          s = std::max(s, finish[size_t(ed.from)] +
                              pb.transfer_seconds(dev[size_t(ed.from)], dev[size_t(t)], ed.bytes));
        }
        finish[size_t(t)] = s + pb.cost(t, dev[size_t(t)]);
        free_at[size_t(dev[size_t(t)])] = finish[size_t(t)];
        makespan = std::max(makespan, finish[size_t(t)]);
      }
      best = std::min(best, makespan);
    }
  } while (std::next_permutation(order.begin(), order.end()));
  return best;
}

TEST(Exhaustive, MatchesPlainEnumerationOnTinyGraphs) {
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    RandomDagParams prm;
    prm.tasks = 6;
    prm.alpha = 0.8;
    prm.ccr = seed % 2 ? 2.0 : 0.5;
    prm.beta = 1.5;
    prm.processors = 2;
    prm.seed = seed;
    auto pb = random_dag(prm);
    ASSERT_TRUE(pb.ok());
    const Options o = with(Algorithm::kExhaustive, LinkModel::kContentionFree);
    auto s = schedule(*pb, o);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    EXPECT_TRUE(s->proved_optimal);
    EXPECT_NEAR(s->makespan, brute_force_optimum(*pb), 1e-9 * s->makespan) << "seed " << seed;
    EXPECT_TRUE(verify_schedule(*pb, *s, o).ok());
  }
}

TEST(Exhaustive, OptimumIsNoWorseThanAnyHeuristic) {
  int strictly_better = 0;
  for (uint64_t seed = 1; seed <= 16; ++seed) {
    RandomDagParams prm;
    prm.tasks = seed % 2 ? 9 : 10;
    prm.ccr = seed % 4 < 2 ? 1.0 : 5.0;
    prm.beta = 1.0;
    prm.processors = seed % 3 == 0 ? 2 : 3;
    prm.seed = seed;
    auto pb = random_dag(prm);
    ASSERT_TRUE(pb.ok());
    const Options o = with(Algorithm::kExhaustive, LinkModel::kContentionFree);
    auto opt = schedule(*pb, o);
    ASSERT_TRUE(opt.ok()) << opt.status().to_string();
    EXPECT_TRUE(opt->proved_optimal);
    EXPECT_TRUE(verify_schedule(*pb, *opt, o).ok());
    for (Algorithm a :
         {Algorithm::kHeft, Algorithm::kPeft, Algorithm::kLookahead, Algorithm::kAuto}) {
      auto s = schedule(*pb, with(a, LinkModel::kContentionFree));
      ASSERT_TRUE(s.ok());
      EXPECT_LE(opt->makespan, s->makespan * (1 + 1e-12)) << algorithm_name(a) << " seed " << seed;
      if (a == Algorithm::kHeft && opt->makespan < s->makespan * (1 - 1e-9)) ++strictly_better;
    }
  }
  EXPECT_GT(strictly_better, 0);  // HEFT is a heuristic: the search finds better somewhere
}

TEST(Exhaustive, RefusesWhatItCannotDo) {
  RandomDagParams prm;
  prm.tasks = 30;
  auto pb = random_dag(prm);
  ASSERT_TRUE(pb.ok());
  auto s = schedule(*pb, with(Algorithm::kExhaustive, LinkModel::kContentionFree));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("30 tasks exceed the limit of 12"), std::string::npos);
  s = schedule(heft_paper_example(), with(Algorithm::kExhaustive, LinkModel::kSerialized));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("contention-free"), std::string::npos);
  Options tiny_budget = with(Algorithm::kExhaustive, LinkModel::kContentionFree);
  tiny_budget.exhaustive_max_nodes = 3;
  s = schedule(heft_paper_example(), tiny_budget);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kDeadlineExceeded);
}

// ---- transfers, streams, events ----------------------------------------------------

// producer on dev 0 feeding three consumers pinned to dev 1 through one output.
TaskGraph fan_out_graph(int consumers, bool same_data) {
  TaskGraph g;
  g.add_task(Task{"src", 0, {}, 100});
  for (int i = 0; i < consumers; ++i) {
    g.add_task(Task{std::string("use").append(std::to_string(i)), 1, {}, 10});
    g.add_edge(0, i + 1, 100, same_data ? 0 : i);
  }
  return g;
}

TEST(Transfers, OneCopyPerDataAndDestinationWithEvents) {
  Problem pb = make_problem(fan_out_graph(3, true), {{1, 1}, {5, 5}, {5, 5}, {5, 5}}, 100.0, 0.5);
  Options o = with(Algorithm::kHeft);
  o.placement = *parse_placement("layers=0:dev:0,1:dev:1");
  auto s = schedule(pb, o);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_TRUE(verify_schedule(pb, *s, o).ok());
  ASSERT_EQ(s->transfers.size(), 1u);
  const Transfer& x = s->transfers[0];
  EXPECT_EQ(x.from_device, 0);
  EXPECT_EQ(x.to_device, 1);
  EXPECT_DOUBLE_EQ(x.start, 1.0);
  EXPECT_DOUBLE_EQ(x.finish, 1.0 + 0.5 + 1.0);  // latency + 100 B at 100 B/s
  const StreamInfo& st = s->streams[size_t(x.stream)];
  EXPECT_EQ(st.kind, StreamInfo::Kind::kTransfer);
  EXPECT_EQ(st.name, "dev:0->dev:1/copy0");
  // Two events: the producer (for the copy) and the copy (for the three consumers).
  ASSERT_EQ(s->events.size(), 2u);
  EXPECT_EQ(s->events[0].producer, (WorkRef{WorkRef::Kind::kTask, 0}));
  EXPECT_EQ(s->events[1].producer, (WorkRef{WorkRef::Kind::kTransfer, 0}));
  ASSERT_EQ(s->waits.size(), 4u);
  EXPECT_EQ(s->waits[0].event, 0);
  EXPECT_EQ(s->waits[0].waiter, (WorkRef{WorkRef::Kind::kTransfer, 0}));
  for (size_t w = 1; w < 4; ++w) {
    EXPECT_EQ(s->waits[w].event, 1);
    EXPECT_EQ(s->waits[w].waiter.kind, WorkRef::Kind::kTask);
  }
  // Consumers run back to back on dev 1 after the copy.
  std::vector<double> starts;
  for (TaskId t = 1; t <= 3; ++t) starts.push_back(s->tasks[size_t(t)].start);
  std::sort(starts.begin(), starts.end());
  EXPECT_EQ(starts, (std::vector<double>{2.5, 7.5, 12.5}));
  EXPECT_DOUBLE_EQ(s->makespan, 17.5);
  // The issue order is what an executor walks: producer, copy, consumers.
  EXPECT_EQ(s->issue_order[0], (WorkRef{WorkRef::Kind::kTask, 0}));
  EXPECT_EQ(s->issue_order[1], (WorkRef{WorkRef::Kind::kTransfer, 0}));
}

TEST(Transfers, SerializedLinksQueueContentionFreeLinksOverlap) {
  // Three distinct outputs leave dev 0 at the same time for dev 1.
  Problem pb = make_problem(fan_out_graph(3, false), {{1, 1}, {5, 5}, {5, 5}, {5, 5}}, 100.0, 0);
  Options o = with(Algorithm::kHeft, LinkModel::kSerialized);
  o.placement = *parse_placement("layers=0:dev:0,1:dev:1");
  auto serial = schedule(pb, o);
  ASSERT_TRUE(serial.ok());
  ASSERT_TRUE(verify_schedule(pb, *serial, o).ok());
  ASSERT_EQ(serial->transfers.size(), 3u);
  std::vector<double> starts;
  for (const Transfer& x : serial->transfers) {
    starts.push_back(x.start);
    EXPECT_EQ(x.stream, serial->transfers[0].stream);
  }
  std::sort(starts.begin(), starts.end());
  EXPECT_EQ(starts, (std::vector<double>{1, 2, 3}));

  o.link_model = LinkModel::kContentionFree;
  auto free = schedule(pb, o);
  ASSERT_TRUE(free.ok());
  ASSERT_TRUE(verify_schedule(pb, *free, o).ok());
  std::set<int32_t> streams;
  for (const Transfer& x : free->transfers) {
    EXPECT_DOUBLE_EQ(x.start, 1.0);
    streams.insert(x.stream);
  }
  EXPECT_EQ(streams.size(), 3u);  // one channel per overlapping transfer
  EXPECT_LT(free->makespan, serial->makespan + 1e-12);
}

TEST(Transfers, ComputeOverlapsTransfers) {
  // A chain on dev 0 whose first output also goes to dev 1: the copy runs while dev 0
  // keeps computing.
  TaskGraph g;
  for (const char* n : {"a", "b", "c", "remote"}) g.add_task(Task{n, 0, {}, 0});
  g.mutable_task(3).layer = 1;
  g.add_edge(0, 1, 1);
  g.add_edge(1, 2, 1);
  g.add_edge(0, 3, 400);
  Problem pb = make_problem(std::move(g), {{1, 1}, {3, 3}, {3, 3}, {1, 1}}, 100.0, 0);
  Options o = with(Algorithm::kHeft);
  o.placement = *parse_placement("layers=0:dev:0,1:dev:1");
  auto s = schedule(pb, o);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->transfers.size(), 1u);
  EXPECT_DOUBLE_EQ(s->transfers[0].start, 1.0);
  EXPECT_DOUBLE_EQ(s->transfers[0].finish, 5.0);
  EXPECT_DOUBLE_EQ(s->tasks[1].start, 1.0);  // b runs during the copy
  EXPECT_DOUBLE_EQ(s->makespan, 7.0);
}

// ---- fallbacks and strict placement ----------------------------------------------

TEST(Fallback, UnsupportedOnThePreferredDeviceIsRecorded) {
  // dev 0 is 10x faster but does not support "argmax".
  TaskGraph g;
  g.add_task(Task{"matmul", -1, {}, 0});
  Task am{"argmax", -1, {}, 0};
  am.work.op_class = OpClass::kVector;
  g.add_task(am);
  g.add_edge(0, 1, 10);
  Problem pb = make_problem(std::move(g), {{1, 10}, {1, 10}}, 100.0, 0.001);
  pb.set_supported(1, 0, false);
  auto s = schedule(pb, with(Algorithm::kHeft));
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_TRUE(verify_schedule(pb, *s).ok());
  EXPECT_EQ(s->tasks[1].device, 1);
  ASSERT_EQ(s->fallbacks.size(), 1u);
  const Fallback& f = s->fallbacks[0];
  EXPECT_EQ(f.task, 1);
  EXPECT_EQ(f.preferred_device, 0);
  EXPECT_EQ(f.chosen_device, 1);
  EXPECT_EQ(f.reason, "task 'argmax' (vector) prefers dev:0, which does not support it");
  EXPECT_DOUBLE_EQ(f.preferred_finish, 2.0);
  EXPECT_DOUBLE_EQ(f.chosen_finish, 1.0 + 0.001 + 0.1 + 10.0);
  EXPECT_DOUBLE_EQ(f.cost_seconds(), 9.101);

  Options strict = with(Algorithm::kHeft);
  strict.strict_placement = true;
  auto refused = schedule(pb, strict);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(),
            "strict placement: task 'argmax' (vector) prefers dev:0, which does not support it; "
            "it would run on dev:1 instead (finish 11.101 s instead of 2.000 s)");
  strict.algorithm = Algorithm::kAuto;
  EXPECT_FALSE(schedule(pb, strict).ok());  // every candidate prefers dev:0
}

TEST(Fallback, NoFallbackWhenTheSupportedDeviceIsBestAnyway) {
  TaskGraph g;
  g.add_task(Task{"x", -1, {}, 0});
  Problem pb = make_problem(std::move(g), {{5, 1}});
  pb.set_supported(0, 0, false);
  Options strict = with(Algorithm::kHeft);
  strict.strict_placement = true;
  auto s = schedule(pb, strict);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->fallbacks.empty());
  EXPECT_EQ(s->tasks[0].device, 1);
}

TEST(Fallback, PinnedToAnUnsupportedDevice) {
  Problem pb = make_problem(fan_out_graph(1, true), {{1, 1}, {1, 1}});
  pb.set_supported(1, 1, false);
  Options o = with(Algorithm::kHeft);
  o.placement = *parse_placement("layers=0-1:dev:1");
  auto s = schedule(pb, o);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(verify_schedule(pb, *s, o).ok());
  ASSERT_EQ(s->fallbacks.size(), 1u);
  EXPECT_EQ(s->fallbacks[0].reason,
            "task 'use0' (vector) is pinned to dev:1, which does not support it");
  EXPECT_EQ(s->tasks[0].device, 1);
  EXPECT_EQ(s->tasks[1].device, 0);
  o.strict_placement = true;
  EXPECT_EQ(schedule(pb, o).status().code(), StatusCode::kFailedPrecondition);
  // The exhaustive search honours pins it can and records the one it cannot.
  Options ex = with(Algorithm::kExhaustive, LinkModel::kContentionFree);
  ex.placement = o.placement;
  auto opt = schedule(pb, ex);
  ASSERT_TRUE(opt.ok()) << opt.status().to_string();
  EXPECT_TRUE(verify_schedule(pb, *opt, ex).ok());
  EXPECT_EQ(opt->tasks[0].device, 1);
  ASSERT_EQ(opt->fallbacks.size(), 1u);
  EXPECT_EQ(opt->fallbacks[0].task, 1);
  ex.strict_placement = true;
  EXPECT_EQ(schedule(pb, ex).status().code(), StatusCode::kFailedPrecondition);
}

TEST(Problems, InvalidInputsAreRefusedWithReasons) {
  auto g = [] {
    TaskGraph t;
    t.add_task(Task{"a", -1, {}, 0});
    return t;
  };
  std::vector<LinkCost> links(4, LinkCost{"l", 1, 0});
  auto r = Problem::from_costs(g(), {{"x:0", 0}, {"x:1", 0}}, {1.0}, links);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "scheduling problem: 1 costs given for 1 tasks on 2 devices");
  r = Problem::from_costs(g(), {{"x:0", 0}, {"x:0", 0}}, {1.0, 1.0}, links);
  EXPECT_NE(r.status().message().find("device 'x:0' listed twice"), std::string::npos);
  r = Problem::from_costs(g(), {{"x:0", 0}, {"x:1", 0}}, {std::nan(""), 1.0}, links);
  EXPECT_NE(r.status().message().find("task 'a' has cost nan on x:0"), std::string::npos);
  r = Problem::from_costs(g(), {{"x:0", 0}, {"x:1", 0}}, {kInfinity, kInfinity}, links);
  EXPECT_EQ(r.status().message(),
            "scheduling problem: task 'a' can run on no device (x:0: no peak for its work "
            "(infinite cost); x:1: no peak for its work (infinite cost))");
  r = Problem::from_costs(g(), {}, {}, {});
  EXPECT_EQ(r.status().message(), "scheduling problem: no devices");
  auto ok = Problem::from_costs(g(), {{"x:0", 0}, {"x:1", 0}}, {1.0, 2.0}, links);
  ASSERT_TRUE(ok.ok());
  ok->set_supported(0, 0, false);
  ok->set_supported(0, 1, false);
  auto s = schedule(*ok);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("x:0: not supported; x:1: not supported"), std::string::npos);
}

// ---- memory capacity and layer splitting -------------------------------------------

// Devices as the cost model sees a fast NPU with little memory and a slow, large CPU.
CostModel npu_and_cpu(uint64_t npu_memory) {
  DeviceInfo npu;
  npu.id = "npu:0";
  npu.backend = "npu_sim";
  npu.name = "test npu";
  npu.memory_bytes = npu_memory;
  npu.memory_bandwidth_bytes_per_s = 1e12;
  npu.peak_flops[DType::kF16] = 100e12;
  npu.launch_overhead_s = 2e-6;
  npu.links.push_back(LinkInfo{"host", -1, "pcie-gen5-x16", 50e9, 2e-6});
  DeviceInfo cpu;
  cpu.id = "cpu:0";
  cpu.backend = "cpu";
  cpu.name = "test cpu";
  cpu.memory_bytes = 64ull << 30;
  cpu.memory_bandwidth_bytes_per_s = 50e9;
  cpu.peak_flops[DType::kF32] = 2e12;
  cpu.launch_overhead_s = 1e-6;
  cpu.links.push_back(LinkInfo{"host", -1, "memory-bus", 50e9, 1e-7});
  return CostModel::from_infos({npu, cpu}, CalibrationOptions{false, {}});
}

TransformerShape small_gpt() {
  TransformerShape s;
  s.layers = 12;
  s.hidden = 768;
  s.heads = 12;
  s.ffn = 3072;
  s.vocab = 50257;
  s.context = 1024;
  return s;
}

TEST(Capacity, EverythingOnTheFastDeviceWhenItFits) {
  auto pb = Problem::from_cost_model(transformer_task_graph(small_gpt()), npu_and_cpu(16ull << 30));
  ASSERT_TRUE(pb.ok()) << pb.status().to_string();
  auto s = schedule(*pb);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_TRUE(verify_schedule(*pb, *s).ok());
  for (const TaskPlacement& t : s->tasks) EXPECT_EQ(t.device, 0);
  EXPECT_TRUE(s->transfers.empty());
  EXPECT_EQ(s->memory[0].resident_bytes, pb->graph().total_resident_bytes());
  EXPECT_GT(s->memory[0].peak_activation_bytes, 0u);
}

TEST(Capacity, ModelTooBigForOneDeviceIsSplitByLayers) {
  TaskGraph g = transformer_task_graph(small_gpt());
  ASSERT_TRUE(g.finalize().ok());
  const uint64_t total = g.total_resident_bytes();
  const uint64_t npu_memory = total * 55 / 100;  // a little over half the model fits
  auto pb = Problem::from_cost_model(std::move(g), npu_and_cpu(npu_memory));
  ASSERT_TRUE(pb.ok());
  for (Algorithm a : {Algorithm::kAuto, Algorithm::kHeft, Algorithm::kLayerPartition,
                      Algorithm::kPeft, Algorithm::kAllOnFastest, Algorithm::kRefine}) {
    auto s = schedule(*pb, with(a));
    ASSERT_TRUE(s.ok()) << algorithm_name(a) << ": " << s.status().to_string();
    const Status v = verify_schedule(*pb, *s);
    EXPECT_TRUE(v.ok()) << algorithm_name(a) << ": " << v.to_string();
    EXPECT_LE(s->memory[0].peak_bytes(), npu_memory) << algorithm_name(a);
    EXPECT_GT(s->memory[0].resident_bytes, total / 3) << algorithm_name(a);
    EXPECT_GT(s->memory[1].resident_bytes, 0u) << algorithm_name(a);
  }
  // The layer partition: every layer whole on one device, devices in contiguous ranges.
  auto s = schedule(*pb, with(Algorithm::kLayerPartition));
  ASSERT_TRUE(s.ok());
  std::vector<int32_t> device_of_layer(12, -1);
  for (TaskId t = 0; t < pb->task_count(); ++t) {
    const int32_t l = pb->graph().task(t).layer;
    if (l < 0) continue;
    if (device_of_layer[size_t(l)] < 0) device_of_layer[size_t(l)] = s->tasks[size_t(t)].device;
    EXPECT_EQ(s->tasks[size_t(t)].device, device_of_layer[size_t(l)]) << pb->graph().task(t).name;
  }
  int switches = 0;
  for (size_t l = 1; l < 12; ++l) switches += device_of_layer[l] != device_of_layer[l - 1];
  EXPECT_EQ(switches, 1);
  // Only the activation crossing the split moves between devices (plus the embedding's
  // or the head's input when they sit on the other side).
  EXPECT_LE(s->transfers.size(), 3u);
  // The split is at least as good as the auto choice claims for it.
  auto best = schedule(*pb);
  ASSERT_TRUE(best.ok());
  EXPECT_LE(best->makespan, s->makespan);
}

TEST(Capacity, PinnedSplitAndPinsThatDoNotFit) {
  TaskGraph g = transformer_task_graph(small_gpt());
  ASSERT_TRUE(g.finalize().ok());
  const uint64_t total = g.total_resident_bytes();
  auto pb = Problem::from_cost_model(std::move(g), npu_and_cpu(total * 55 / 100));
  ASSERT_TRUE(pb.ok());
  Options o;
  o.placement = *parse_placement("layers=0-5:npu:0,6-11:cpu:0");
  auto s = schedule(*pb, o);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_TRUE(verify_schedule(*pb, *s, o).ok());
  for (TaskId t = 0; t < pb->task_count(); ++t) {
    const int32_t l = pb->graph().task(t).layer;
    if (l >= 0) {
      EXPECT_EQ(s->tasks[size_t(t)].device, l < 6 ? 0 : 1);
    }
  }
  o.placement = *parse_placement("layers=0-11:npu:0");
  auto refused = schedule(*pb, o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(refused.status().message().find("pinned placement puts task 'h."), std::string::npos);
  EXPECT_NE(refused.status().message().find("on npu:0, which cannot hold it"), std::string::npos);
}

// The refinement moves whole layers (and single tasks outside them) between devices; it
// must only ever shorten the schedule it starts from and keep every invariant.
TEST(Refine, ShortensOrKeepsTheBestCandidate) {
  for (int64_t new_tokens : {1, 128})
    for (int percent : {35, 55, 80}) {
      TransformerShape shape = small_gpt();
      shape.new_tokens = new_tokens;
      TaskGraph g = transformer_task_graph(shape);
      ASSERT_TRUE(g.finalize().ok());
      const uint64_t npu_memory = g.total_resident_bytes() * uint64_t(percent) / 100;
      auto pb = Problem::from_cost_model(std::move(g), npu_and_cpu(npu_memory));
      ASSERT_TRUE(pb.ok());
      auto best = schedule(*pb);
      ASSERT_TRUE(best.ok()) << best.status().to_string();
      ASSERT_TRUE(verify_schedule(*pb, *best).ok());
      ASSERT_FALSE(best->candidates.empty());
      EXPECT_EQ(best->candidates.back().algorithm, Algorithm::kRefine);
      double before = kInfinity;
      for (const CandidateResult& c : best->candidates)
        if (c.algorithm != Algorithm::kRefine) before = std::min(before, c.makespan);
      EXPECT_LE(best->makespan, before);
      EXPECT_DOUBLE_EQ(best->candidates.back().makespan, best->makespan);
      if (best->algorithm == Algorithm::kRefine) {
        EXPECT_LT(best->makespan, before);
      }
      auto from_heft = schedule(*pb, with(Algorithm::kRefine));
      auto heft = schedule(*pb, with(Algorithm::kHeft));
      ASSERT_TRUE(from_heft.ok() && heft.ok());
      EXPECT_LE(from_heft->makespan, heft->makespan);
      EXPECT_TRUE(verify_schedule(*pb, *from_heft).ok());
    }
}

// One model, two graph shapes: the split chosen for decode is pinned onto prefill, so
// every layer (and its weights) stays on one device across the session's graphs.
TEST(Placement, SplitOfOneGraphPinsAnother) {
  TransformerShape decode = small_gpt();
  TaskGraph g = transformer_task_graph(decode);
  ASSERT_TRUE(g.finalize().ok());
  const uint64_t npu_memory = g.total_resident_bytes() * 55 / 100;
  auto dec = Problem::from_cost_model(std::move(g), npu_and_cpu(npu_memory));
  ASSERT_TRUE(dec.ok());
  auto s = schedule(*dec, with(Algorithm::kLayerPartition));
  ASSERT_TRUE(s.ok());
  const PlacementSpec split = placement_of(*dec, *s);
  ASSERT_EQ(split.layer_pins.size(), 2u);
  EXPECT_EQ(split.layer_pins[0].first, 0);
  EXPECT_EQ(split.layer_pins[0].last + 1, split.layer_pins[1].first);
  EXPECT_EQ(split.layer_pins[1].last, 11);
  EXPECT_NE(split.layer_pins[0].device, split.layer_pins[1].device);
  auto reparsed = parse_placement(format_placement(split));
  ASSERT_TRUE(reparsed.ok()) << format_placement(split);

  TransformerShape prefill = decode;
  prefill.new_tokens = 64;
  auto pre = Problem::from_cost_model(transformer_task_graph(prefill), npu_and_cpu(npu_memory));
  ASSERT_TRUE(pre.ok());
  Options o;
  o.placement = *reparsed;
  auto ps = schedule(*pre, o);
  ASSERT_TRUE(ps.ok()) << ps.status().to_string();
  ASSERT_TRUE(verify_schedule(*pre, *ps, o).ok());
  for (TaskId t = 0; t < pre->task_count(); ++t) {
    const int32_t l = pre->graph().task(t).layer;
    if (l < 0) continue;
    const LayerPin& pin = l <= split.layer_pins[0].last ? split.layer_pins[0] : split.layer_pins[1];
    EXPECT_EQ(pre->device(ps->tasks[size_t(t)].device).id, pin.device);
  }
}

TEST(Placement, TaskPinsWinAndAreChecked) {
  Problem pb = make_problem(fan_out_graph(2, true), {{1, 1}, {1, 1}, {1, 1}});
  Options o = with(Algorithm::kHeft);
  o.placement = *parse_placement("rest=dev:0");
  o.task_pins = {-1, 1, -1};
  auto s = schedule(pb, o);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_TRUE(verify_schedule(pb, *s, o).ok());
  EXPECT_EQ(s->tasks[0].device, 0);
  EXPECT_EQ(s->tasks[1].device, 1);
  EXPECT_EQ(s->tasks[2].device, 0);
  o.task_pins = {-1, 1};
  EXPECT_EQ(schedule(pb, o).status().message(), "task pins: 2 given for 3 tasks");
  o.task_pins = {-1, 2, -1};
  EXPECT_EQ(schedule(pb, o).status().message(), "task pins: task 'use0' pinned to device 2 of 2");
}

TEST(Capacity, ModelTooBigForAllDevices) {
  TaskGraph g = transformer_task_graph(small_gpt());
  ASSERT_TRUE(g.finalize().ok());
  const uint64_t total = g.total_resident_bytes();
  auto pb = Problem::from_cost_model(std::move(g), npu_and_cpu(total / 4));
  ASSERT_TRUE(pb.ok());
  pb->set_capacity(1, total / 4);
  auto s = schedule(*pb);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(s.status().message().find("cannot place task"), std::string::npos);
  EXPECT_NE(s.status().message().find("npu:0: needs"), std::string::npos);
  EXPECT_NE(s.status().message().find("cpu:0: needs"), std::string::npos);
}

TEST(Capacity, ActivationsCountAgainstCapacity) {
  // Four tasks in a chain, each with 100 B of weights and a 60 B output; dev 0 is fast and
  // holds 420 B: all weights fit, but not next to the two outputs live at a time (120 B).
  TaskGraph g;
  for (int i = 0; i < 4; ++i) {
    g.add_task(Task{std::string("t").append(std::to_string(i)), i, {}, 60});
    g.add_weights(i, 100);
    if (i) g.add_edge(i - 1, i, 60);
  }
  Problem pb = make_problem(std::move(g), {{1, 10}, {1, 10}, {1, 10}, {1, 10}}, 1e6, 0, {420, 0});
  for (Algorithm a : {Algorithm::kHeft, Algorithm::kAuto, Algorithm::kAllOnFastest}) {
    auto s = schedule(pb, with(a));
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    const Status v = verify_schedule(pb, *s);
    EXPECT_TRUE(v.ok()) << algorithm_name(a) << ": " << v.to_string();
    EXPECT_LE(s->memory[0].peak_bytes(), 420u);
    EXPECT_GT(s->memory[0].peak_activation_bytes, 0u);
    EXPECT_EQ(s->memory[0].resident_bytes, 300u) << algorithm_name(a);  // one task spilled
  }
}

}  // namespace
}  // namespace hal::scheduler
