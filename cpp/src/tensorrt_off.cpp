// The TensorRT entry points of a build configured with HRM_WITH_TENSORRT=OFF.
#include "hrm/errors.hpp"
#include "tensorrt.hpp"

namespace hrm {

bool tensorrt_compiled() { return false; }
std::string cuda_unavailable() { return "this build has no CUDA support (HRM_WITH_TENSORRT=OFF)"; }
std::unique_ptr<Backend> make_tensorrt_backend(const Manifest&, const std::map<std::string, Artifact>&) {
  throw BackendError("this build has no TensorRT backend (configured with HRM_WITH_TENSORRT=OFF)",
                     "reconfigure cpp/ with -DHRM_WITH_TENSORRT=ON (docs/cpp.md)");
}

}  // namespace hrm
