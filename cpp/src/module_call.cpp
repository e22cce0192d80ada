#include "module_call.hpp"

#include "hrm/errors.hpp"
#include "specs.hpp"

namespace hrm {

std::map<std::string, Tensor> ModuleCall::run(const Feeds& feeds) const {
  const std::string& module = artifact_.module;
  std::map<std::string, Shape> shapes;
  std::vector<const Tensor*> inputs;
  for (const IoRecord& io : artifact_.inputs) {
    auto it = feeds.find(io.name);
    if (it == feeds.end() || it->second == nullptr) throw UsageError(module + ": input '" + io.name + "' missing");
    shapes[io.name] = it->second->shape;
    inputs.push_back(it->second);
  }
  // Any of the artifact's profiles may admit the call (the Python ONNX Runtime backend's rule).
  check_shapes(profiles_, artifact_.inputs, module, shapes, cfg_);
  const auto values = axis_values(artifact_.inputs, module, shapes, cfg_);
  std::vector<Tensor> outputs;
  for (const IoRecord& io : artifact_.outputs) outputs.push_back(Tensor::zeros(resolve_shape(io.shape, values)));
  backend_->run(module, inputs, outputs);
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < outputs.size(); ++i) out[artifact_.outputs[i].name] = std::move(outputs[i]);
  return out;
}

}  // namespace hrm
