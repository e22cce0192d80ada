// A backend runs one module of the bundle: ONNX Runtime (ort-cpu, ort-cuda) or TensorRT. Callers bind
// tensors by the names the manifest records for the artifact (ModuleCall), never by position alone.
#pragma once

#include <string>
#include <vector>

#include "hrm/tensor.hpp"

namespace hrm {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const std::string& name() const = 0;  // "ort-cpu", "ort-cuda", "tensorrt"
  virtual std::string describe() const = 0;
  // Run `module`: inputs in the artifact's input order, outputs pre-shaped in its output order and filled
  // in place. Safe to call from several threads at once (a backend that is not serialises itself).
  virtual void run(const std::string& module, const std::vector<const Tensor*>& inputs,
                   std::vector<Tensor>& outputs) const = 0;
};

}  // namespace hrm
