// The model's sizes (model_src/config.py's HRMConfig, read from the manifest) and what one opened runtime
// accepts (hrm_export/runtime/inputs.py's Limits, from the chosen profile).
#pragma once

#include <cstdint>
#include <string>

namespace hrm {

struct Config {
  int64_t n_day_features = 8;
  int64_t n_minute_features = 11;
  int64_t max_days = 64;
  int64_t max_minutes = 390;
  int64_t h_layers = 4;
  int64_t h_dim = 384;
  int64_t h_heads = 6;
  double h_mlp_ratio = 1.0;
  int64_t l_layers = 5;
  int64_t l_dim = 544;
  int64_t l_heads = 8;
  double l_mlp_ratio = 6.0;
  bool cross_attention = false;
  // "mean" or "mean_last" (model_src.config.FILM_POOLS); a manifest without the field predates it, so "mean"
  // (model_src.config.LEGACY_FILM_POOL), while Python writes the field into every manifest it makes.
  std::string film_pool = "mean";
  int64_t n_actions = 3;
  double norm_eps = 1e-5;
  double dropout = 0.0;

  int64_t l_head_dim() const { return l_dim / l_heads; }
};

struct Limits {
  int64_t batch = 64;           // instruments per backend call; more are split into chunks of this size
  int64_t days = 64;            // look-back days per instrument
  int64_t minutes = 390;        // minutes in one full-session pass (run_day)
  int64_t new_minutes = 390;    // minutes per l_step call; a longer push is split into calls of this size
  int64_t total_minutes = 390;  // minutes one streaming session can hold (past + new)
  std::string profile = "model config";
};

}  // namespace hrm
