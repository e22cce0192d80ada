// The TensorRT backend's entry points. Compiled in when HRM_WITH_TENSORRT is on (the default, against the
// TensorRT 10 headers and the lean runtime fetched by fetch_deps.sh); off, each says so.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "backend.hpp"
#include "manifest.hpp"

namespace hrm {

bool tensorrt_compiled();
// Empty when a CUDA device is present, else why not ("no CUDA device (...)"). Checked before any TensorRT
// call: without a GPU, createInferRuntime returns a non-null pointer that is not a runtime.
std::string cuda_unavailable();
// Checks every plan (manifest record, header, TensorRT major, version compatibility, GPU, compute
// capability) before deserializing any, then deserializes them.
std::unique_ptr<Backend> make_tensorrt_backend(const Manifest& m, const std::map<std::string, Artifact>& artifacts);

}  // namespace hrm
