// The L-step call, kept in one place: new minutes + the day's FiLM (+ h_tokens with cross-attention) +
// past K/V → heads of the new minutes and present K/V. Inputs are bound by the names the manifest records
// for the artifact; a fixed-capacity K/V artifact (past_kv of max_minutes slots plus a filled length) is to
// be a second implementation of this call, chosen from the manifest.
#pragma once

#include "hrm/runtime.hpp"
#include "module_call.hpp"

namespace hrm {

struct StepOut {
  Tensor action_logits;  // (B, T, 3)
  Tensor quantity;       // (B, T, 1)
  Tensor q_values;       // (B, T, 2)
  Tensor present_kv;     // (L, 2, B, H, P + T, hd)
};

class LStepCall {
 public:
  explicit LStepCall(ModuleCall call);  // ArtifactMismatchError for an input or output it cannot bind
  StepOut operator()(const Tensor& minutes, const DayFilm& film, const Tensor& past_kv) const;
  const Artifact& artifact() const { return call_.artifact(); }

 private:
  ModuleCall call_;
};

}  // namespace hrm
