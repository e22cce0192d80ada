#include "ort_backend.hpp"

#include <onnxruntime_cxx_api.h>

#include <algorithm>

#include "hrm/errors.hpp"

namespace hrm {

namespace {
Ort::Env& env() {  // one per process, made on first use
  static Ort::Env e(ORT_LOGGING_LEVEL_ERROR, "hrm_runtime");
  return e;
}

// Python's repr of a list of names: ['minutes', 'film_gamma']
std::string names_str(const std::vector<std::string>& names) {
  std::string s = "[";
  for (size_t i = 0; i < names.size(); ++i) s += (i ? ", '" : "'") + names[i] + "'";
  return s + "]";
}

std::string dims_str(const std::vector<int64_t>& dims, const std::vector<const char*>& symbols) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    const bool named = dims[i] < 0 && i < symbols.size() && symbols[i] && *symbols[i];
    s += (i ? ", " : "") + (named ? "'" + std::string(symbols[i]) + "'" : std::to_string(dims[i]));
  }
  return s + "]";
}
}  // namespace

bool ort_has_cuda() {
  const auto providers = Ort::GetAvailableProviders();
  return std::find(providers.begin(), providers.end(), "CUDAExecutionProvider") != providers.end();
}

struct OrtBackend::Module {
  mutable Ort::Session session{nullptr};  // Run() is not const in the C++ API; ONNX Runtime allows concurrent runs
  std::vector<std::string> in_names, out_names;
  std::vector<const char*> in_ptrs, out_ptrs;
};

OrtBackend::OrtBackend(const Manifest& m, const std::map<std::string, Artifact>& artifacts, bool cuda,
                       int intra_op_threads)
    : name_(cuda ? "ort-cuda" : "ort-cpu") {
  Ort::SessionOptions so;
  so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
  so.SetIntraOpNumThreads(intra_op_threads);
  so.AddConfigEntry("session.intra_op.allow_spinning", "0");  // see session_options in the Python backend
  so.SetLogSeverityLevel(3);
  if (cuda) so.AppendExecutionProvider_CUDA(OrtCUDAProviderOptions{});
  const std::string rebuild = "re-export the bundle: hrm-export export --out " + m.dir.string();
  for (const auto& [module, a] : artifacts) {
    const fs::path path = m.artifact_path(a);
    auto mod = std::make_unique<Module>();
    try {
      mod->session = Ort::Session(env(), path.c_str(), so);
    } catch (const Ort::Exception& e) {
      throw ArtifactMismatchError(path.string() + ": ONNX Runtime cannot load it (" + e.what() + ")", rebuild);
    }
    Ort::AllocatorWithDefaultOptions alloc;
    // The graph's own I/O against the artifact record (which the loader held to the config's spec).
    for (int side = 0; side < 2; ++side) {
      const auto& wanted = side == 0 ? a.inputs : a.outputs;
      const size_t n = side == 0 ? mod->session.GetInputCount() : mod->session.GetOutputCount();
      std::vector<std::string> names, want_names;
      for (size_t i = 0; i < n; ++i)
        names.push_back((side == 0 ? mod->session.GetInputNameAllocated(i, alloc)
                                   : mod->session.GetOutputNameAllocated(i, alloc)).get());
      for (const IoRecord& io : wanted) want_names.push_back(io.name);
      const char* what = side == 0 ? "inputs" : "outputs";
      if (names != want_names)
        throw ArtifactMismatchError(path.string() + ": graph " + what + " " + names_str(names) + " differ from " +
                                        names_str(want_names), rebuild);
      for (size_t i = 0; i < n; ++i) {
        auto type = side == 0 ? mod->session.GetInputTypeInfo(i) : mod->session.GetOutputTypeInfo(i);
        auto info = type.GetTensorTypeAndShapeInfo();
        const auto dims = info.GetShape();
        std::vector<const char*> symbols(dims.size(), nullptr);
        info.GetSymbolicDimensions(symbols.data(), symbols.size());
        const auto& axes = wanted[i].shape;
        bool ok = dims.size() == axes.size();
        for (size_t d = 0; ok && d < dims.size(); ++d) ok = axes[d].dynamic() || dims[d] == axes[d].size;
        if (!ok)
          throw ArtifactMismatchError(path.string() + ": graph " + std::string(what).substr(0, side == 0 ? 5 : 6) +
                                          " " + names[i] + " has shape " + dims_str(dims, symbols) +
                                          ", the config gives " + axes_str(axes), rebuild);
        if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
          throw ArtifactMismatchError(path.string() + ": graph tensor " + names[i] + " is not float32, the tensors "
                                          "this runtime passes", rebuild);
      }
      (side == 0 ? mod->in_names : mod->out_names) = names;
    }
    for (const auto& s : mod->in_names) mod->in_ptrs.push_back(s.c_str());
    for (const auto& s : mod->out_names) mod->out_ptrs.push_back(s.c_str());
    modules_[module] = std::move(mod);
  }
}

OrtBackend::~OrtBackend() = default;

std::string OrtBackend::describe() const {
  return name_ + " (ONNX Runtime " + Ort::GetVersionString() + (name_ == "ort-cuda" ? ", CUDA provider)" : ", CPU)");
}

void OrtBackend::run(const std::string& module, const std::vector<const Tensor*>& inputs,
                     std::vector<Tensor>& outputs) const {
  const Module& mod = *modules_.at(module);
  if (inputs.size() != mod.in_ptrs.size() || outputs.size() != mod.out_ptrs.size())
    throw UsageError(module + ": " + std::to_string(inputs.size()) + " inputs and " + std::to_string(outputs.size()) +
                     " outputs for a graph of " + std::to_string(mod.in_ptrs.size()) + " and " +
                     std::to_string(mod.out_ptrs.size()));
  static const Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<Ort::Value> in, out;
  // Inputs and outputs wrap the tensors' own memory: no copies in or out. ONNX Runtime reads inputs only.
  for (const Tensor* t : inputs)
    in.push_back(Ort::Value::CreateTensor<float>(cpu, const_cast<float*>(t->data.data()), t->data.size(),
                                                 t->shape.data(), t->shape.size()));
  for (Tensor& t : outputs)
    out.push_back(Ort::Value::CreateTensor<float>(cpu, t.data.data(), t.data.size(), t.shape.data(), t.shape.size()));
  try {
    mod.session.Run(Ort::RunOptions{nullptr}, mod.in_ptrs.data(), in.data(), in.size(), mod.out_ptrs.data(),
                    out.data(), out.size());
  } catch (const Ort::Exception& e) {
    throw BackendError(module + ": ONNX Runtime failed (" + e.what() + ")", "check the inputs' shapes and the artifact");
  }
}

}  // namespace hrm
