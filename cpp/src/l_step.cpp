#include "l_step.hpp"

#include <algorithm>
#include <array>

namespace hrm {

namespace {
constexpr std::array<const char*, 5> BINDS = {"minutes", "film_gamma", "film_beta", "past_kv", "h_tokens"};
constexpr std::array<const char*, 4> RETURNS = {"action_logits", "quantity", "q_values", "present_kv"};

template <size_t N>
bool known(const std::array<const char*, N>& names, const std::string& n) {
  return std::any_of(names.begin(), names.end(), [&](const char* k) { return n == k; });
}
}  // namespace

LStepCall::LStepCall(ModuleCall call) : call_(std::move(call)) {
  const Artifact& a = call_.artifact();
  for (const IoRecord& io : a.inputs)
    if (!known(BINDS, io.name))
      throw ArtifactMismatchError(a.path + ": l_step input '" + io.name + "' is not one this runtime binds",
                                  "open the bundle with the runtime version that made it");
  for (const char* name : RETURNS)
    if (std::none_of(a.outputs.begin(), a.outputs.end(), [&](const IoRecord& io) { return io.name == name; }))
      throw ArtifactMismatchError(a.path + ": l_step has no output '" + name + "'",
                                  "re-export the bundle: hrm-export export");
}

StepOut LStepCall::operator()(const Tensor& minutes, const DayFilm& film, const Tensor& past_kv) const {
  Feeds feeds = {{"minutes", &minutes}, {"film_gamma", &film.gamma}, {"film_beta", &film.beta}, {"past_kv", &past_kv},
                 {"h_tokens", &film.h_tokens}};
  auto out = call_.run(feeds);
  return StepOut{std::move(out.at("action_logits")), std::move(out.at("quantity")), std::move(out.at("q_values")),
                 std::move(out.at("present_kv"))};
}

}  // namespace hrm
