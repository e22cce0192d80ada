#include "specs.hpp"

#include "hrm/errors.hpp"

namespace hrm {

std::map<std::string, ModuleSpec> module_specs(const Config& c) {
  auto dyn = [](const char* name) { return Axis{-1, name}; };
  auto fixed = [](int64_t n) { return Axis{n, ""}; };
  auto kv = [&](const char* name, const char* t) {
    return TensorSpec{name, {fixed(c.l_layers), fixed(2), dyn("batch"), fixed(c.l_heads), dyn(t), fixed(c.l_head_dim())}};
  };
  const TensorSpec gamma{"film_gamma", {dyn("batch"), fixed(c.l_dim)}};
  const TensorSpec beta{"film_beta", {dyn("batch"), fixed(c.l_dim)}};
  const TensorSpec h_tokens{"h_tokens", {dyn("batch"), dyn("days"), fixed(c.h_dim)}};
  auto heads = [&](const char* t) {
    return std::vector<TensorSpec>{{"action_logits", {dyn("batch"), dyn(t), fixed(c.n_actions)}},
                                   {"quantity", {dyn("batch"), dyn(t), fixed(1)}},
                                   {"q_values", {dyn("batch"), dyn(t), fixed(2)}}};
  };
  ModuleSpec h{"h_module", {{"days", {dyn("batch"), dyn("days"), fixed(c.n_day_features)}}}, {h_tokens, gamma, beta}};
  ModuleSpec l{"l_module", {{"minutes", {dyn("batch"), dyn("minutes"), fixed(c.n_minute_features)}}, gamma, beta},
               heads("minutes")};
  ModuleSpec step{"l_step",
                  {{"minutes", {dyn("batch"), dyn("new_minutes"), fixed(c.n_minute_features)}}, gamma, beta,
                   kv("past_kv", "past_minutes")},
                  heads("new_minutes")};
  step.outputs.push_back(kv("present_kv", "total_minutes"));
  if (c.cross_attention) {  // h_tokens feeds L only with cross-attention
    l.inputs.push_back(h_tokens);
    step.inputs.push_back(h_tokens);
  }
  return {{"h_module", h}, {"l_module", l}, {"l_step", step}};
}

std::map<std::string, int64_t> axis_values(const std::vector<IoRecord>& inputs, const std::string& module,
                                           const std::map<std::string, Shape>& shapes, const Config& cfg) {
  std::map<std::string, int64_t> values;
  for (const IoRecord& t : inputs) {
    auto it = shapes.find(t.name);
    if (it == shapes.end()) throw UsageError(module + ": input '" + t.name + "' missing");
    const Shape& shape = it->second;
    if (shape.size() != t.shape.size())
      throw ProfileError(module + "." + t.name + ": rank " + std::to_string(shape.size()) + " " + shape_str(shape) +
                             ", expected " + std::to_string(t.shape.size()) + " " + axes_str(t.shape),
                         "reshape the input to the documented layout");
    for (size_t i = 0; i < shape.size(); ++i) {
      const Axis& want = t.shape[i];
      if (!want.dynamic()) {
        if (shape[i] != want.size)
          throw ProfileError(module + "." + t.name + ": dim " + std::to_string(i) + " is " + std::to_string(shape[i]) +
                                 ", the model fixes it at " + std::to_string(want.size) + " " + axes_str(t.shape),
                             "check the feature count / config of the inputs");
      } else if (values.emplace(want.name, shape[i]).first->second != shape[i]) {
        throw ProfileError(module + "." + t.name + ": axis " + want.name + " is " + std::to_string(shape[i]) +
                               " here but " + std::to_string(values[want.name]) + " on another input",
                           "all inputs must agree on batch/days/minutes");
      }
    }
  }
  const std::map<std::string, int64_t> limits = {
      {"days", cfg.max_days}, {"minutes", cfg.max_minutes}, {"new_minutes", cfg.max_minutes}};
  for (const auto& [axis, limit] : limits) {
    auto it = values.find(axis);
    if (it != values.end() && it->second > limit)
      throw ProfileError(module + ": " + axis + "=" + std::to_string(it->second) + " exceeds the model's limit " +
                             std::to_string(limit),
                         "no profile admits it; split the input to at most " + std::to_string(limit) + " " + axis);
  }
  if (values.count("past_minutes") && values.count("new_minutes") &&
      values["past_minutes"] + values["new_minutes"] > cfg.max_minutes)
    throw ProfileError(module + ": past_minutes + new_minutes = " + std::to_string(values["past_minutes"]) + " + " +
                           std::to_string(values["new_minutes"]) + " exceeds the session length " +
                           std::to_string(cfg.max_minutes),
                       "start a new session (empty past_kv) for the next day");
  return values;
}

std::map<std::string, int64_t> check_shapes(const std::vector<const Profile*>& profiles, const std::vector<IoRecord>& inputs,
                  const std::string& module, const std::map<std::string, Shape>& shapes, const Config& cfg) {
  const auto values = axis_values(inputs, module, shapes, cfg);
  std::string why;
  for (const Profile* p : profiles) {
    std::string mine;
    for (const auto& [axis, v] : values) {
      auto range = p->axes.find(axis);
      if (range == p->axes.end()) continue;
      if (v < range->second[0] || v > range->second[2])
        mine += (mine.empty() ? "" : "; ") + axis + "=" + std::to_string(v) + " outside " + p->name + " range " +
                std::to_string(range->second[0]) + ".." + std::to_string(range->second[2]);
    }
    if (mine.empty()) return values;
    why += (why.empty() ? "" : "; ") + mine;
  }
  if (!profiles.empty())
    throw ProfileError(module + ": " + why, "export/build with a profile that admits these shapes (docs/cli.md)");
  return values;
}

Limits limits_from_profile(const Profile& p, const Config& cfg) {
  auto top = [&](const char* name, int64_t fallback) {
    auto it = p.axes.find(name);
    return it == p.axes.end() ? fallback : it->second[2];
  };
  Limits l;
  l.new_minutes = top("new_minutes", cfg.max_minutes);
  l.total_minutes = std::min(cfg.max_minutes, top("past_minutes", cfg.max_minutes - 1) + l.new_minutes);
  l.batch = top("batch", 64);
  l.days = std::min(top("days", cfg.max_days), cfg.max_days);
  l.minutes = std::min(top("minutes", cfg.max_minutes), cfg.max_minutes);
  l.profile = p.name;
  return l;
}

Shape resolve_shape(const std::vector<Axis>& axes, std::map<std::string, int64_t> values) {
  if (values.count("past_minutes") && values.count("new_minutes"))
    values["total_minutes"] = values["past_minutes"] + values["new_minutes"];
  Shape shape;
  for (const Axis& a : axes) {
    if (!a.dynamic()) {
      shape.push_back(a.size);
      continue;
    }
    auto it = values.find(a.name);
    if (it == values.end()) throw UsageError("output axis '" + a.name + "' has no value from the inputs");
    shape.push_back(it->second);
  }
  return shape;
}

}  // namespace hrm
