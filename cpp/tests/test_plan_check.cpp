// TensorRT plans are checked before anything is deserialized: the header against the manifest's record, the
// TensorRT major against the headers and library this runtime links, version compatibility (the lean
// runtime runs version-compatible plans only), the GPU's compute capability, and a CUDA device at all.
#include <gtest/gtest.h>

#include "helpers.hpp"
#include "plan_check.hpp"
#include "tensorrt.hpp"

namespace {

std::string plan_bytes(int major, int minor, int patch, int build, uint32_t serialization = 0) {
  std::string b = "ftrt";
  for (int i = 0; i < 4; ++i) b += static_cast<char>((serialization >> (8 * i)) & 0xff);
  b += std::string(16, '\0');
  b += {static_cast<char>(major), static_cast<char>(minor), static_cast<char>(patch), static_cast<char>(build)};
  return b + std::string(100, 'x');
}

// A bundle holding one plan with the given manifest record.
hrm::Manifest plan_bundle(const TempDir& tmp, const std::string& bytes, hrm::Json extra) {
  write_file(tmp / "h_module.plan", bytes);
  hrm::Manifest m;
  m.dir = tmp.path;
  hrm::Artifact a;
  a.module = "h_module";
  a.precision = "fp32";
  a.format = "trt-plan";
  a.path = "h_module.plan";
  a.extra = std::move(extra);
  m.artifacts.push_back(a);
  return m;
}

const hrm::TrtHere HERE{{10, 16, 1}, 10, true};  // the lean 10.16.1 library with 10.x headers

TEST(PlanCheck, ParsesTheHeader) {
  const auto h = hrm::parse_plan_header(plan_bytes(10, 14, 1, 48), "p");
  EXPECT_EQ(h.version_str(), "10.14.1.48");
  EXPECT_REFUSED(hrm::parse_plan_header("ftrt", "p"), hrm::ArtifactMismatchError, "too short to be a TensorRT plan");
  EXPECT_REFUSED(hrm::parse_plan_header(std::string(40, 'x'), "p"), hrm::ArtifactMismatchError, "not a TensorRT plan");
  EXPECT_REFUSED(hrm::parse_plan_header(plan_bytes(10, 14, 1, 48, 1), "p"), hrm::ArtifactMismatchError,
                 "serialization version 1");
}

TEST(PlanCheck, RefusesBeforeDeserializing) {
  TempDir tmp;
  const hrm::Json vc = {{"tensorrt_version", "10.14.1.48"}, {"compute_capability", "9.0"}, {"version_compatible", true}};
  auto m = plan_bundle(tmp, plan_bytes(10, 14, 1, 48), vc);
  hrm::check_plan_offline(m, m.artifacts[0], HERE);  // same major, older build, version-compatible: runs

  m = plan_bundle(tmp, plan_bytes(10, 14, 1, 48), {{"tensorrt_version", "10.14.1.48"}});
  EXPECT_REFUSED(hrm::check_plan_offline(m, m.artifacts[0], HERE), hrm::ArtifactMismatchError,
                 "manifest lacks ['compute_capability']");
  m = plan_bundle(tmp, plan_bytes(10, 14, 1, 48), {{"tensorrt_version", "10.13.0.35"}, {"compute_capability", "9.0"}});
  EXPECT_REFUSED(hrm::check_plan_offline(m, m.artifacts[0], HERE), hrm::ArtifactMismatchError,
                 "the file was replaced after the build");
  m = plan_bundle(tmp, plan_bytes(11, 4, 0, 106), {{"tensorrt_version", "11.4.0.106"}, {"compute_capability", "9.0"},
                                                   {"version_compatible", true}});
  EXPECT_REFUSED(hrm::check_plan_offline(m, m.artifacts[0], HERE), hrm::ArtifactMismatchError, "the majors must match");
  m = plan_bundle(tmp, plan_bytes(10, 14, 1, 48), {{"tensorrt_version", "10.14.1.48"}, {"compute_capability", "9.0"}});
  EXPECT_REFUSED(hrm::check_plan_offline(m, m.artifacts[0], HERE), hrm::ArtifactMismatchError,
                 "runs version-compatible plans only");
  m = plan_bundle(tmp, plan_bytes(10, 17, 0, 1), {{"tensorrt_version", "10.17.0.1"}, {"compute_capability", "9.0"},
                                                  {"version_compatible", true}});
  EXPECT_REFUSED(hrm::check_plan_offline(m, m.artifacts[0], HERE), hrm::ArtifactMismatchError,
                 "same major, same or later release");
  m = plan_bundle(tmp, "not a plan", vc);
  EXPECT_REFUSED(hrm::check_plan_offline(m, m.artifacts[0], HERE), hrm::ArtifactMismatchError, "too short");
}

TEST(PlanCheck, ComputeCapability) {
  TempDir tmp;
  auto m = plan_bundle(tmp, plan_bytes(10, 14, 1, 48), {{"tensorrt_version", "10.14.1.48"}, {"compute_capability", "9.0"}});
  hrm::check_plan_device(m, m.artifacts[0], HERE, {9, 0});
  EXPECT_REFUSED(hrm::check_plan_device(m, m.artifacts[0], HERE, {8, 0}), hrm::ArtifactMismatchError,
                 "built for compute capability 9.0, this GPU is 8.0");
  m.artifacts[0].extra["hardware_compatibility"] = "ampere+";
  hrm::check_plan_device(m, m.artifacts[0], HERE, {8, 6});
  m.artifacts[0].extra["compute_capability"] = "nine";
  EXPECT_REFUSED(hrm::check_plan_device(m, m.artifacts[0], HERE, {9, 0}), hrm::ArtifactMismatchError,
                 "bad compute capability 'nine'");
}

TEST(TensorRT, RefusesWithoutACudaDeviceBeforeCreatingARuntime) {
  if (!hrm::tensorrt_compiled()) GTEST_SKIP() << "built with HRM_WITH_TENSORRT=OFF";
  if (hrm::cuda_unavailable().empty()) GTEST_SKIP() << "a CUDA device is present: this checks the machine without one";
  TempDir tmp;
  const hrm::Json vc = {{"tensorrt_version", "10.14.1.48"}, {"compute_capability", "9.0"}, {"version_compatible", true}};
  const auto m = plan_bundle(tmp, plan_bytes(10, 14, 1, 48), vc);
  std::map<std::string, hrm::Artifact> artifacts{{"h_module", m.artifacts[0]}};
  EXPECT_REFUSED(hrm::make_tensorrt_backend(m, artifacts), hrm::BackendError, "no CUDA device");
}

}  // namespace
