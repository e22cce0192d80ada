// The decision rule, mirroring model_src/decisions.py (its one definition) exactly:
//   action[t]     = argmax of the logits (short 0 / flat 1 / long 2; the lowest index wins an exact tie)
//   confidence[t] = max softmax of the logits, computed in double
//   quantity[t]   = quantity[t, 0]
//   halting       = the first minute with q_halt > q_continue (strictly), sticky for the session; a session
//                   that reaches its close (minute session_minutes - 1) without one halts at the close;
//                   before the close, no halt yet is NOT_HALTED (-1)
// Non-finite outputs never become decisions: each function throws NonFiniteOutputError naming the output,
// the instrument and the session minute. The conformance tests hold these to the Python rule.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "hrm/tensor.hpp"

namespace hrm {

constexpr int64_t NOT_HALTED = -1;
constexpr std::array<const char*, 3> ACTIONS = {"short", "flat", "long"};  // index of action_logits' last axis

// Throw NonFiniteOutputError at the first NaN/Inf of x (B, T, ...); minute t of x is first_minute + t.
void check_finite(const char* name, const Tensor& x, int64_t first_minute);

struct Actions {
  std::vector<int64_t> action;     // (B*T)
  std::vector<double> confidence;  // (B*T)
};
Actions actions(const Tensor& action_logits, int64_t first_minute);  // (B, T, 3)

std::vector<double> quantities(const Tensor& quantity, int64_t first_minute);  // (B, T, 1) -> (B*T)

// The ACT halting minute of each instrument after the minutes of q_values (B, T, 2), which are session
// minutes first_minute .. first_minute+T-1; halted_at (B,) is the state before them (empty: none yet).
std::vector<int64_t> halting_minutes(const Tensor& q_values, int64_t session_minutes, int64_t first_minute,
                                     const std::vector<int64_t>& halted_at = {});

// (B,) halting minutes -> (B*T): whether each instrument has halted at or before each minute.
std::vector<uint8_t> halted(const std::vector<int64_t>& halt_minute, int64_t first_minute, int64_t minutes);

}  // namespace hrm
