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
  const auto values = check_shapes(profiles_, artifact_.inputs, module, shapes, cfg_);
  std::vector<Tensor> outputs;
  for (const IoRecord& io : artifact_.outputs) {
    Shape shape = resolve_shape(io.shape, values);
    const size_t n = numel(shape);
    if (!pool_ || n * sizeof(float) < BufferPool::MIN_BYTES) {
      outputs.push_back(Tensor::zeros(std::move(shape)));
      continue;
    }
    // room for the whole session, so the cache of a later minute fits the same storage
    auto whole_session = values;
    whole_session["past_minutes"] = cfg_.max_minutes;
    whole_session["new_minutes"] = 0;
    outputs.emplace_back(shape, pool_->take(n, numel(resolve_shape(io.shape, whole_session))));
  }
  backend_->run(module, inputs, outputs);
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < outputs.size(); ++i) out[artifact_.outputs[i].name] = std::move(outputs[i]);
  return out;
}

}  // namespace hrm
