// gap_timeline.h (internal): the idle gaps of one resource (a device's engine, a link), so
// the insertion-based policy finds the earliest gap that fits in O(log n) instead of
// scanning every slot (which is quadratic on 100,000-task graphs).
//
// A treap keyed by gap start; each node keeps the longest gap in its subtree, so
// "leftmost gap starting after t that is at least d long" prunes whole subtrees. The last
// gap is [finish of the last work, +inf). In append mode (no insertion) only that tail
// is used.
//
// Threading: single-threaded value type.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

namespace hal::scheduler::detail {

class GapTimeline {
 public:
  explicit GapTimeline(bool insertion = true) : insertion_(insertion) { reset(insertion); }

  void reset(bool insertion) {
    insertion_ = insertion;
    nodes_.clear();
    free_.clear();
    tail_ = 0;
    root_ = insertion_ ? make(0.0, kInf) : -1;
  }

  // The earliest start >= ready of an interval of `length` that fits an idle gap.
  double earliest(double ready, double length) const {
    if (!insertion_) return ready > tail_ ? ready : tail_;
    const int32_t f = floor(ready);
    if (f >= 0 && ready + length <= nodes_[size_t(f)].end) return ready;
    const int32_t g = first_fit(root_, ready, length);
    return nodes_[size_t(g)].start;  // the last gap is infinite, so one always fits
  }

  // Marks [start, start + length) busy; it must lie in one gap (as earliest() returns).
  void occupy(double start, double length) {
    if (!insertion_) {
      if (start + length > tail_) tail_ = start + length;
      return;
    }
    if (length <= 0) return;
    const int32_t g = floor(start);
    const double a = nodes_[size_t(g)].start;
    const double b = nodes_[size_t(g)].end;
    double e = start + length;
    if (e > b) e = b;  // rounding: earliest() guaranteed the fit
    erase(a);
    if (start > a) insert(a, start);
    if (b > e) insert(e, b);
  }

 private:
  static constexpr double kInf = std::numeric_limits<double>::infinity();

  struct Node {
    double start, end, max_len;
    uint32_t priority;
    int32_t left, right;
  };

  double len(int32_t n) const { return nodes_[size_t(n)].end - nodes_[size_t(n)].start; }
  double max_len(int32_t n) const { return n < 0 ? -1.0 : nodes_[size_t(n)].max_len; }
  void update(int32_t n) {
    Node& x = nodes_[size_t(n)];
    double m = x.end - x.start;
    if (max_len(x.left) > m) m = max_len(x.left);
    if (max_len(x.right) > m) m = max_len(x.right);
    x.max_len = m;
  }

  int32_t make(double start, double end) {
    seed_ ^= seed_ << 13;
    seed_ ^= seed_ >> 17;
    seed_ ^= seed_ << 5;
    Node node{start, end, end - start, seed_, -1, -1};
    if (!free_.empty()) {
      const int32_t i = free_.back();
      free_.pop_back();
      nodes_[size_t(i)] = node;
      return i;
    }
    nodes_.push_back(node);
    return int32_t(nodes_.size() - 1);
  }

  // The gap with the largest start <= t, or -1.
  int32_t floor(double t) const {
    int32_t n = root_, best = -1;
    while (n >= 0) {
      if (nodes_[size_t(n)].start <= t) {
        best = n;
        n = nodes_[size_t(n)].right;
      } else {
        n = nodes_[size_t(n)].left;
      }
    }
    return best;
  }

  // The leftmost gap of subtree n starting after t with at least `length`, or -1.
  int32_t first_fit(int32_t n, double t, double length) const {
    while (n >= 0) {
      const Node& x = nodes_[size_t(n)];
      if (x.max_len < length) return -1;
      if (x.start <= t) {
        n = x.right;
        continue;
      }
      const int32_t l = first_fit(x.left, t, length);
      if (l >= 0) return l;
      if (x.end - x.start >= length) return n;
      n = x.right;
    }
    return -1;
  }

  // Splits subtree n into keys < key and keys >= key.
  void split(int32_t n, double key, int32_t& lo, int32_t& hi) {
    if (n < 0) {
      lo = hi = -1;
      return;
    }
    if (nodes_[size_t(n)].start < key) {
      split(nodes_[size_t(n)].right, key, nodes_[size_t(n)].right, hi);
      lo = n;
    } else {
      split(nodes_[size_t(n)].left, key, lo, nodes_[size_t(n)].left);
      hi = n;
    }
    update(n);
  }

  int32_t merge(int32_t a, int32_t b) {
    if (a < 0) return b;
    if (b < 0) return a;
    if (nodes_[size_t(a)].priority > nodes_[size_t(b)].priority) {
      nodes_[size_t(a)].right = merge(nodes_[size_t(a)].right, b);
      update(a);
      return a;
    }
    nodes_[size_t(b)].left = merge(a, nodes_[size_t(b)].left);
    update(b);
    return b;
  }

  void insert(double start, double end) {
    const int32_t n = make(start, end);
    int32_t lo, hi;
    split(root_, start, lo, hi);
    root_ = merge(merge(lo, n), hi);
  }

  void erase(double start) {
    int32_t lo, mid, hi;
    split(root_, start, lo, mid);
    // mid's smallest key is `start`: split it off.
    int32_t only = -1;
    split_first(mid, only, hi);
    if (only >= 0) free_.push_back(only);
    root_ = merge(lo, hi);
  }

  // Removes the leftmost node of subtree n into `first`; the rest into `rest`.
  void split_first(int32_t n, int32_t& first, int32_t& rest) {
    if (n < 0) {
      first = rest = -1;
      return;
    }
    if (nodes_[size_t(n)].left < 0) {
      first = n;
      rest = nodes_[size_t(n)].right;
      nodes_[size_t(n)].right = -1;
      update(n);
      return;
    }
    split_first(nodes_[size_t(n)].left, first, nodes_[size_t(n)].left);
    update(n);
    rest = n;
  }

  bool insertion_ = true;
  std::vector<Node> nodes_;
  std::vector<int32_t> free_;
  int32_t root_ = -1;
  double tail_ = 0;
  uint32_t seed_ = 0x9e3779b9u;
};

}  // namespace hal::scheduler::detail
