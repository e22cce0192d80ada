// What an opened Runtime holds, shared by its handles and sessions: the bundle, the backend, one call per
// module, the limits. Calls larger than the profile's batch are split into chunks of limits.batch
// instruments; pushes longer than limits.new_minutes into several l_step calls (the Python runtime's rules).
#pragma once

#include <memory>

#include "hrm/runtime.hpp"
#include "l_step.hpp"
#include "loader.hpp"
#include "module_call.hpp"

namespace hrm::detail {

struct StepHeads {
  Tensor action_logits, quantity, q_values;  // (B, T, ·)
  Tensor present_kv;                         // (L, 2, B, H, P + T, hd)
};

struct RuntimeImpl {
  explicit RuntimeImpl(Opened opened);

  DayFilm h(const Tensor& days) const;  // checked and chunked
  StepHeads l_step(const Tensor& minutes, const DayFilm& film, const Tensor& past_kv) const;  // chunked, unchecked
  Timeline run_day(const Tensor& days, const Tensor& minutes, int64_t session_minutes) const;
  Tensor empty_kv(int64_t batch) const;
  void warmup() const;

  Opened opened;
  Config cfg;
  Limits limits;
  const TokenBook* days_range = nullptr;     // the manifest's token_ranges; null when it records none
  const TokenBook* minutes_range = nullptr;
  std::string backend_name, precision, reason, signature;
  std::unique_ptr<ModuleCall> h_call, l_call;
  std::unique_ptr<LStepCall> step_call;
  std::shared_ptr<BufferPool> pool = std::make_shared<BufferPool>();  // storage of the K/V caches

 private:
  DayFilm h_chunk(const Tensor& days) const;
};

}  // namespace hrm::detail
