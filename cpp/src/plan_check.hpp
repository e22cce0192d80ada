// Can this runtime run that TensorRT plan? Checked from the plan's header and the manifest's record before
// anything is deserialized (hrm_export/build/plan_header.py and compat.py hold the same rules).
//
// Header layout (what `trtexec --getPlanVersionOnly` reads, plans from TensorRT 8.6 on): bytes 0-3 "ftrt",
// 4-7 serialization version (uint32 little-endian, 0 is the only known layout), 24-27 major, minor, patch,
// build, one byte each.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>

#include "manifest.hpp"

namespace hrm {

struct PlanHeader {
  uint32_t serialization = 0;
  std::array<int, 4> version{};  // major, minor, patch, build
  std::string version_str() const;
};

PlanHeader parse_plan_header(const std::string& head, const std::string& source);  // ArtifactMismatchError
PlanHeader read_plan_header(const std::filesystem::path& path);

struct TrtHere {
  std::array<int, 3> library{};  // the linked TensorRT library's major, minor, patch
  int header_major = 0;          // the TensorRT major this runtime was compiled against
  bool lean = true;              // linked against the lean runtime: runs version-compatible plans only
};

// Checks that need no GPU: the manifest's record, the header, the TensorRT major, version compatibility.
void check_plan_offline(const Manifest& m, const Artifact& a, const TrtHere& here);
// Checks that need the GPU's compute capability.
void check_plan_device(const Manifest& m, const Artifact& a, const TrtHere& here, std::pair<int, int> device_cc);

}  // namespace hrm
