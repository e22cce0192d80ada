// Checks on tokens before they reach a backend (hrm_export/runtime/inputs.py): rank, batch, feature
// count, finiteness, profile limits. Everything is checked before any state changes.
#pragma once

#include "hrm/config.hpp"
#include "hrm/tensor.hpp"

#include <string>
#include <vector>

namespace hrm {

// The valid range of every feature of one token book ("days" or "minutes"): the manifest's token_ranges.
struct TokenBook {
  std::vector<std::string> names;
  std::vector<float> low, high;  // (F,)
};

// `x` must be (B, N, F) with F == n_features, B == batch (when batch >= 0), nothing empty, all finite, and, with
// a `book`, every value inside its feature's range. `first` is the session minute (or look-back day) of x[:, 0].
void check_tokens(const Tensor& x, const char* name, int64_t n_features, int64_t batch = -1,
                  const TokenBook* book = nullptr, int64_t first = 0);
void check_days(const Tensor& days, const Limits& limits);
void check_session_minutes(const Tensor& minutes, const Limits& limits);

}  // namespace hrm
