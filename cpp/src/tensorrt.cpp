// TensorRT through its documented runtime API: createInferRuntime, deserializeCudaEngine,
// createExecutionContext, setInputShape, setTensorAddress, enqueueV3. Host tensors are copied to device
// buffers kept per tensor (grown as needed) and the outputs copied back; one execution context per module,
// so calls are serialised. Not run here (no GPU, and no TensorRT builder to make plans): it is compiled
// and linked in the default build so it cannot rot, and its refusals are tested.
#include "tensorrt.hpp"

#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <fstream>
#include <iterator>
#include <mutex>

#include "hrm/errors.hpp"
#include "plan_check.hpp"

namespace hrm {

namespace {
class Logger : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char* msg) noexcept override {
    if (severity <= Severity::kERROR) last_error = msg;
  }
  std::string last_error;
};

void cuda_check(cudaError_t err, const std::string& what) {
  if (err != cudaSuccess) throw BackendError(what + ": " + cudaGetErrorString(err), "check the GPU and its driver");
}

TrtHere trt_here() {
  const int v = getInferLibVersion();  // major * 10000 + minor * 100 + patch
  return TrtHere{{v / 10000, (v / 100) % 100, v % 100}, NV_TENSORRT_MAJOR, true};
}

struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr(o.ptr), bytes(o.bytes) { o.ptr = nullptr, o.bytes = 0; }
  void reserve(size_t n) {
    if (n <= bytes) return;
    if (ptr) cudaFree(ptr);
    ptr = nullptr;
    bytes = 0;
    cuda_check(cudaMalloc(&ptr, n), "cudaMalloc");
    bytes = n;
  }
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
};

nvinfer1::Dims to_dims(const Shape& shape) {
  nvinfer1::Dims d{};
  if (shape.size() > static_cast<size_t>(nvinfer1::Dims::MAX_DIMS)) throw UsageError("tensor rank above TensorRT's limit");
  d.nbDims = static_cast<int32_t>(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) d.d[i] = shape[i];
  return d;
}

class TrtBackend : public Backend {
 public:
  TrtBackend(const Manifest& m, const std::map<std::string, Artifact>& artifacts) {
    runtime_.reset(nvinfer1::createInferRuntime(logger_));
    if (!runtime_) throw BackendError("TensorRT: createInferRuntime failed (" + logger_.last_error + ")");
    runtime_->setEngineHostCodeAllowed(true);  // version-compatible plans carry their lean runtime; hashes checked
    cuda_check(cudaStreamCreate(&stream_), "cudaStreamCreate");
    for (const auto& [module, a] : artifacts) {
      const fs::path path = m.artifact_path(a);
      std::ifstream in(path, std::ios::binary);
      const std::string blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      Module mod;
      mod.artifact = a;
      mod.engine.reset(runtime_->deserializeCudaEngine(blob.data(), blob.size()));
      if (!mod.engine)
        throw ArtifactMismatchError(path.string() + ": TensorRT could not deserialize it (" + logger_.last_error + ")",
                                    "rebuild it: hrm-export build --out " + m.dir.string() + " --require-tensorrt");
      mod.context.reset(mod.engine->createExecutionContext());
      if (!mod.context) throw BackendError(path.string() + ": createExecutionContext failed (" + logger_.last_error + ")");
      modules_.emplace(module, std::move(mod));
    }
  }
  ~TrtBackend() override {
    modules_.clear();
    if (stream_) cudaStreamDestroy(stream_);
  }

  const std::string& name() const override { return name_; }
  std::string describe() const override {
    const auto v = trt_here().library;
    return "tensorrt (TensorRT " + std::to_string(v[0]) + "." + std::to_string(v[1]) + "." + std::to_string(v[2]) + ")";
  }

  void run(const std::string& module, const std::vector<const Tensor*>& inputs,
           std::vector<Tensor>& outputs) const override {
    std::lock_guard<std::mutex> lock(mutex_);  // one execution context per module: one enqueue at a time
    Module& mod = modules_.at(module);
    auto& ctx = *mod.context;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::string& name = mod.artifact.inputs.at(i).name;
      DeviceBuffer& buf = mod.buffers[name];
      const size_t bytes = inputs[i]->numel() * sizeof(float);
      buf.reserve(std::max<size_t>(bytes, 4));
      cuda_check(cudaMemcpyAsync(buf.ptr, inputs[i]->data.data(), bytes, cudaMemcpyHostToDevice, stream_), name);
      if (!ctx.setInputShape(name.c_str(), to_dims(inputs[i]->shape)) || !ctx.setTensorAddress(name.c_str(), buf.ptr))
        throw ProfileError(module + ": TensorRT refused input " + name + " of shape " + shape_str(inputs[i]->shape) +
                           " (" + logger_.last_error + ")", "keep the shapes inside the plan's profile");
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      const std::string& name = mod.artifact.outputs.at(i).name;
      const nvinfer1::Dims d = ctx.getTensorShape(name.c_str());
      if (Shape(d.d, d.d + std::max(0, d.nbDims)) != outputs[i].shape)
        throw BackendError(module + ": TensorRT output " + name + " shape differs from " + shape_str(outputs[i].shape));
      DeviceBuffer& buf = mod.buffers[name];
      buf.reserve(std::max<size_t>(outputs[i].numel() * sizeof(float), 4));
      if (!ctx.setTensorAddress(name.c_str(), buf.ptr)) throw BackendError(module + ": setTensorAddress " + name);
    }
    if (!ctx.enqueueV3(stream_)) throw BackendError(module + ": enqueueV3 failed (" + logger_.last_error + ")");
    for (size_t i = 0; i < outputs.size(); ++i)
      cuda_check(cudaMemcpyAsync(outputs[i].data.data(), mod.buffers[mod.artifact.outputs[i].name].ptr,
                                 outputs[i].numel() * sizeof(float), cudaMemcpyDeviceToHost, stream_),
                 "copy " + mod.artifact.outputs[i].name);
    cuda_check(cudaStreamSynchronize(stream_), module + ": cudaStreamSynchronize");
  }

 private:
  struct Module {
    Artifact artifact;
    std::unique_ptr<nvinfer1::ICudaEngine> engine;
    std::unique_ptr<nvinfer1::IExecutionContext> context;
    std::map<std::string, DeviceBuffer> buffers;
  };
  std::string name_ = "tensorrt";
  mutable Logger logger_;
  std::unique_ptr<nvinfer1::IRuntime> runtime_;
  cudaStream_t stream_ = nullptr;
  mutable std::mutex mutex_;
  mutable std::map<std::string, Module> modules_;
};
}  // namespace

bool tensorrt_compiled() { return true; }

std::string cuda_unavailable() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) return std::string("no CUDA device (") + cudaGetErrorString(err) + ")";
  return count > 0 ? "" : "no CUDA device";
}

std::unique_ptr<Backend> make_tensorrt_backend(const Manifest& m, const std::map<std::string, Artifact>& artifacts) {
  const TrtHere here = trt_here();
  for (const auto& item : artifacts) check_plan_offline(m, item.second, here);
  const std::string why = cuda_unavailable();
  if (!why.empty()) throw BackendError("backend tensorrt cannot run here: " + why, "use an ONNX Runtime backend");
  int device = 0;
  cudaDeviceProp prop{};
  cuda_check(cudaGetDevice(&device), "cudaGetDevice");
  cuda_check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  for (const auto& item : artifacts) check_plan_device(m, item.second, here, {prop.major, prop.minor});
  return std::make_unique<TrtBackend>(m, artifacts);
}

}  // namespace hrm
