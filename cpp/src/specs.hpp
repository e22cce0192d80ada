// The I/O contract of each exported module (hrm_export/specs.py): tensor names, dtypes and named axes,
// and the profile rules over them (hrm_export/profiles.py): which axis values a call has, and whether a
// profile admits them.
#pragma once

#include <array>
#include <map>
#include <string>
#include <vector>

#include "hrm/config.hpp"
#include "hrm/tensor.hpp"
#include "manifest.hpp"

namespace hrm {

constexpr std::array<const char*, 3> MODULES = {"h_module", "l_module", "l_step"};

struct TensorSpec {
  std::string name;
  std::vector<Axis> axes;
  std::string dtype = "float32";
};

struct ModuleSpec {
  std::string name;
  std::vector<TensorSpec> inputs, outputs;
};

std::map<std::string, ModuleSpec> module_specs(const Config& cfg);

// The value of each named axis in these input shapes (name -> shape), after checking ranks, fixed dims,
// that inputs agree, and the model's own limits (ProfileError otherwise), as profiles.axis_values does.
std::map<std::string, int64_t> axis_values(const std::vector<IoRecord>& inputs, const std::string& module,
                                           const std::map<std::string, Shape>& shapes, const Config& cfg);

// The axis values if any of `profiles` admits the shapes (or there are none); else ProfileError naming each
// axis outside its range.
std::map<std::string, int64_t> check_shapes(const std::vector<const Profile*>& profiles, const std::vector<IoRecord>& inputs,
                  const std::string& module, const std::map<std::string, Shape>& shapes, const Config& cfg);

// Limits of a runtime from a profile's axes (inputs.py's Limits.from_axes).
Limits limits_from_profile(const Profile& p, const Config& cfg);

// An output's shape from its axes and the call's axis values (total_minutes = past + new minutes).
Shape resolve_shape(const std::vector<Axis>& axes, std::map<std::string, int64_t> values);

}  // namespace hrm
