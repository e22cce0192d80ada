// Decisions of consecutive minutes (Timeline) and of one minute (Decision), as the Python runtime returns
// them (hrm_export/runtime/decision.py), computed by the rule in decisions.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hrm/tensor.hpp"

namespace hrm {

struct Decision {
  int64_t minute = 0;
  std::vector<int64_t> action;       // (B,) index into ACTIONS
  std::vector<double> confidence;    // (B,)
  std::vector<double> quantity;      // (B,)
  std::vector<float> q_halt;         // (B,)
  std::vector<float> q_continue;     // (B,)
  std::vector<uint8_t> halted;       // (B,) halted at this minute or before
  std::vector<int64_t> halt_minute;  // (B,) first halting minute, NOT_HALTED if none yet
  const char* action_name(size_t instrument) const;
};

struct Timeline {
  int64_t first_minute = 0;
  int64_t batch = 0;
  int64_t minutes = 0;
  std::vector<float> action_logits;  // (B, T, 3)
  std::vector<int64_t> action;       // (B, T)
  std::vector<double> confidence;    // (B, T)
  std::vector<double> quantity;      // (B, T)
  std::vector<float> q_halt;         // (B, T)
  std::vector<float> q_continue;     // (B, T)
  std::vector<uint8_t> halted;       // (B, T)
  std::vector<int64_t> halt_minute;  // (B,) as of the last minute

  int64_t last_minute() const { return first_minute + minutes - 1; }
  Decision at(int64_t minute) const;  // absolute session minute; std::out_of_range outside
  Decision last() const { return at(last_minute()); }
};

// Decisions for new minutes from the heads (B, T, 3), (B, T, 1), (B, T, 2), continuing the halt state
// `halted_before` (B,) of the minutes before first_minute (empty: a new day).
Timeline make_timeline(const Tensor& action_logits, const Tensor& quantity, const Tensor& q_values,
                       int64_t first_minute, int64_t session_minutes, const std::vector<int64_t>& halted_before);

Timeline join_minutes(const std::vector<Timeline>& parts);  // consecutive minutes of the same instruments
Timeline join_batch(const std::vector<Timeline>& parts);    // instrument chunks of the same minutes

}  // namespace hrm
