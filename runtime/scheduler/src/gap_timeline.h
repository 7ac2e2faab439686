// gap_timeline.h (internal): the idle gaps of one resource (a device's engine, a link), so
// the insertion-based policy finds the earliest gap that fits in O(log n) instead of
// scanning every slot (which is quadratic on 100,000-task graphs).
//
// The timeline is busy intervals separated by finite idle gaps, then idle from `tail`
// on. Finite gaps live in a treap keyed by start; each node keeps the longest gap in its
// subtree, so "leftmost gap starting after t that is at least d long" prunes whole
// subtrees, and "no gap is long enough" is one comparison at the root. Work that starts
// at or after the tail (the common case in list scheduling) touches only `tail`. In append
// mode (no insertion) only the tail is used.
//
// Threading: single-threaded value type.
#pragma once

#include <cstdint>
#include <vector>

namespace hal::scheduler::detail {

class GapTimeline {
 public:
  explicit GapTimeline(bool insertion = true) : insertion_(insertion) {}

  // The earliest start >= ready of an interval of `length` that fits an idle gap.
  double earliest(double ready, double length) const {
    last_gap_ = -1;
    if (ready >= tail_) return ready;
    if (!insertion_) return tail_;
    const int32_t g = first_fit(root_, ready, length);
    if (g < 0) return tail_;
    last_gap_ = g;
    const double start = nodes_[size_t(g)].start;
    return start > ready ? start : ready;
  }

  // Marks [start, start + length) busy; it must lie in one idle gap (as earliest() gives).
  void occupy(double start, double length) {
    if (length <= 0) return;
    const double end = start + length;
    if (start >= tail_) {
      if (insertion_ && start > tail_) insert(tail_, start);
      tail_ = end;
      return;
    }
    int32_t g = last_gap_;  // the gap earliest() found, when it is the one asked for
    if (g < 0 || nodes_[size_t(g)].start > start || nodes_[size_t(g)].end < start) g = floor(start);
    last_gap_ = -1;
    if (g < 0) return;  // not in a gap: a caller bug; leave the timeline unchanged
    Node& x = nodes_[size_t(g)];
    const double a = x.start, b = x.end;
    const double e = end < b ? end : b;  // rounding: earliest() guaranteed the fit
    if (start <= a && e >= b) {
      erase(a);
    } else if (start <= a) {
      x.start = e;  // keeps its place in the order: e < b <= the next gap's start
      refresh_path(e);
    } else {
      x.end = start;
      refresh_path(a);
      if (e < b) insert(e, b);
    }
  }

 private:
  struct Node {
    double start, end, max_len;
    uint32_t priority;
    int32_t left, right;
  };

  double max_len(int32_t n) const { return n < 0 ? -1.0 : nodes_[size_t(n)].max_len; }
  void update(int32_t n) {
    Node& x = nodes_[size_t(n)];
    double m = x.end - x.start;
    const double l = max_len(x.left), r = max_len(x.right);
    if (l > m) m = l;
    if (r > m) m = r;
    x.max_len = m;
  }

  int32_t make(double start, double end) {
    seed_ ^= seed_ << 13;
    seed_ ^= seed_ >> 17;
    seed_ ^= seed_ << 5;
    const Node node{start, end, end - start, seed_, -1, -1};
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
      const Node& x = nodes_[size_t(n)];
      if (x.start <= t) {
        best = n;
        n = x.right;
      } else {
        n = x.left;
      }
    }
    return best;
  }

  // The first gap of subtree n in which [max(start, t), +length) fits, or -1. Gaps are
  // disjoint and sorted, so of those starting at or before t only the last can hold the
  // interval (from t); after t, the leftmost long enough. One descent, pruned by the
  // subtree's longest gap, so short gaps cost nothing.
  int32_t first_fit(int32_t n, double t, double length) const {
    while (n >= 0) {
      const Node& x = nodes_[size_t(n)];
      if (x.max_len < length) return -1;
      if (x.start <= t) {
        if (t + length <= x.end) return n;  // everything to its left ends before t
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

  // Recomputes max_len on the path from the root to the node keyed `key`.
  void refresh_path(double key) {
    int32_t path[128];
    int depth = 0;
    int32_t n = root_;
    while (n >= 0 && depth < 128) {
      path[depth++] = n;
      const Node& x = nodes_[size_t(n)];
      if (key == x.start) break;
      n = key < x.start ? x.left : x.right;
    }
    while (depth > 0) update(path[--depth]);
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
    int32_t only = -1;
    split_first(mid, only, hi);  // mid's smallest key is `start`
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
  mutable int32_t last_gap_ = -1;
  uint32_t seed_ = 0x9e3779b9u;
};

}  // namespace hal::scheduler::detail
