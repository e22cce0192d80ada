// Checks on tokens before they reach a backend (hrm_export/runtime/inputs.py): rank, batch, feature
// count, finiteness, profile limits. Everything is checked before any state changes.
#pragma once

#include "hrm/config.hpp"
#include "hrm/tensor.hpp"

namespace hrm {

// `x` must be (B, N, F) with F == n_features, B == batch (when batch >= 0), nothing empty, all finite.
void check_tokens(const Tensor& x, const char* name, int64_t n_features, int64_t batch = -1);
void check_days(const Tensor& days, const Limits& limits);
void check_session_minutes(const Tensor& minutes, const Limits& limits);

}  // namespace hrm
