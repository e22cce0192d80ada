// ONNX Runtime through its C++ API: the bundle's ONNX per module on the CPU provider (ort-cpu) or CUDA
// (ort-cuda, where the linked library has the CUDA provider). The same session options as the Python
// runtime (hrm_export/backends/ort_backend.py's session_options): all graph optimizations, intra-op
// spinning off, errors-only log.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "backend.hpp"
#include "manifest.hpp"

namespace hrm {

bool ort_has_cuda();  // the linked onnxruntime has CUDAExecutionProvider

class OrtBackend : public Backend {
 public:
  // Opens a session per artifact and checks each graph's own I/O against the artifact record.
  OrtBackend(const Manifest& m, const std::map<std::string, Artifact>& artifacts, bool cuda, int intra_op_threads);
  ~OrtBackend() override;
  const std::string& name() const override { return name_; }
  std::string describe() const override;
  void run(const std::string& module, const std::vector<const Tensor*>& inputs,
           std::vector<Tensor>& outputs) const override;

 private:
  struct Module;
  std::string name_;
  std::map<std::string, std::unique_ptr<Module>> modules_;
};

}  // namespace hrm
