// Timing one cell as hrm_export/bench/timing.py does (its time_call and Timing, mirrored for the C++
// tool): warm-ups for ~20 % of the budget (1 to 5 calls), then iterations sized to the budget from the
// last warm-up (3 to 500), percentiles with numpy's linear interpolation, host wall clock.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "pyjson.hpp"

namespace hrm::tools {

struct Timing {
  int warmup = 0;
  std::vector<double> samples_ms;
};

inline double percentile(std::vector<double> s, double q) {
  std::sort(s.begin(), s.end());
  const double pos = (static_cast<double>(s.size()) - 1) * q / 100;
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = static_cast<size_t>(std::ceil(pos));
  return s[lo] + (s[hi] - s[lo]) * (pos - static_cast<double>(lo));
}

// One timed call of fn; `prepare` runs before it, outside the clock (e.g. forking a session's state).
inline double once_ms(const std::function<void()>& prepare, const std::function<void()>& fn) {
  if (prepare) prepare();
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

inline Timing time_call(const std::function<void()>& prepare, const std::function<void()>& fn, double budget_s,
                        int min_iters = 3, int max_iters = 500) {
  Timing t;
  double spent = 0, last = 0;
  while (t.warmup < 5) {
    last = once_ms(prepare, fn);
    ++t.warmup;
    spent += last;
    if (spent >= 0.2 * budget_s * 1e3) break;
  }
  const int fit = static_cast<int>(budget_s * 1e3 / std::max(last, 1e-3));
  const int n = std::max(min_iters, std::min(max_iters, fit));
  for (int i = 0; i < n; ++i) t.samples_ms.push_back(once_ms(prepare, fn));
  return t;
}

// The Timing dict of hrm-export bench (values rounded to 4 digits).
inline std::string timing_json(const Timing& t) {
  const auto& s = t.samples_ms;
  double sum = 0;
  for (double v : s) sum += v;
  auto r4 = [](double v) { return py_round(v, 4); };
  return py_json_object({{"warmup", std::to_string(t.warmup)},
                         {"iterations", std::to_string(s.size())},
                         {"p50_ms", r4(percentile(s, 50))},
                         {"p90_ms", r4(percentile(s, 90))},
                         {"p99_ms", r4(percentile(s, 99))},
                         {"max_ms", r4(*std::max_element(s.begin(), s.end()))},
                         {"mean_ms", r4(sum / static_cast<double>(s.size()))},
                         {"min_ms", r4(*std::min_element(s.begin(), s.end()))},
                         {"clock", py_json_string("steady_clock")}});
}

}  // namespace hrm::tools
