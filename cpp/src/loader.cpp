#include "loader.hpp"

#include <algorithm>

#include "hrm/errors.hpp"
#include "ort_backend.hpp"
#include "signature.hpp"
#include "specs.hpp"
#include "tensorrt.hpp"

#ifndef HRM_EXPORT_VERSION
#error "HRM_EXPORT_VERSION (the hrm-export release whose bundles this runtime reads) must be defined by the build"
#endif

namespace hrm {

namespace {
std::string format_of(const std::string& backend) { return backend == "tensorrt" ? "trt-plan" : "onnx"; }

// The part of a version that must match: the minor release for 0.x (minor releases may break the format),
// the major one after.
std::string release(const std::string& v) {
  const size_t a = v.find('.');
  if (v.compare(0, a, "0") != 0) return v.substr(0, a);
  const size_t b = a == std::string::npos ? a : v.find('.', a + 1);
  return v.substr(0, b);
}

// Python's repr of [(name, [axes])]: [('days', ['batch', 'days', 8])]
std::string io_str(const std::vector<std::pair<std::string, std::vector<Axis>>>& io) {
  std::string s = "[";
  for (size_t i = 0; i < io.size(); ++i) s += (i ? ", ('" : "('") + io[i].first + "', " + axes_str(io[i].second) + ")";
  return s + "]";
}

Limits choose_limits(const Manifest& m, const std::map<std::string, Artifact>& artifacts, const std::string& asked,
                     std::vector<const Profile*>& admitted) {
  std::vector<std::string> common;
  bool first = true;
  for (const auto& item : artifacts) {
    const auto& mine = item.second.profiles;
    if (first) {
      common = mine;
    } else {
      common.erase(std::remove_if(common.begin(), common.end(),
                                  [&](const std::string& p) { return std::find(mine.begin(), mine.end(), p) == mine.end(); }),
                   common.end());
    }
    first = false;
  }
  for (const std::string& p : common)
    if (const Profile* prof = m.profile(p)) admitted.push_back(prof);
  std::string profile = asked;
  if (profile.empty()) {
    if (common.empty()) {
      Limits l;
      l.days = m.config.max_days;
      l.minutes = l.new_minutes = l.total_minutes = m.config.max_minutes;
      return l;
    }
    profile = common.front();
  }
  const Profile* p = m.profile(profile);
  if (!p || std::find(common.begin(), common.end(), profile) == common.end()) {
    std::string names;
    for (const std::string& c : common) names += (names.empty() ? "'" : ", '") + c + "'";
    throw ArtifactMismatchError(m.dir.string() + ": no artifact set built for profile '" + profile +
                                    "' (bundle profiles: [" + names + "])",
                                "pick one of them, or export with it: hrm-export export --profile " + profile);
  }
  return limits_from_profile(*p, m.config);
}
}  // namespace

void check_versions(const Manifest& m) {
  if (!m.versions.is_object() || !m.versions.contains("hrm_export") || !m.versions.at("hrm_export").is_string()) return;
  const std::string made = m.versions.at("hrm_export").get<std::string>();
  if (!made.empty() && release(made) != release(HRM_EXPORT_VERSION))
    throw ArtifactMismatchError(m.dir.string() + ": made by hrm-export " + made + ", this is " + HRM_EXPORT_VERSION +
                                    " (manifest format may differ)",
                                "re-export with this version: hrm-export export --out " + m.dir.string());
}

void check_io(const Manifest& m, const Artifact& a, const std::map<std::string, ModuleSpec>& specs) {
  const std::string rebuild = "re-export the bundle: hrm-export export --out " + m.dir.string();
  const std::string where = m.dir.string() + "/" + a.path;
  const ModuleSpec& spec = specs.at(a.module);
  const bool strict_dtype = a.precision == "fp32" || a.precision == "int8-cpu" || a.precision == "int8";
  for (int side = 0; side < 2; ++side) {
    const auto& recorded = side == 0 ? a.inputs : a.outputs;
    const auto& wanted = side == 0 ? spec.inputs : spec.outputs;
    std::vector<std::pair<std::string, std::vector<Axis>>> got, want;
    for (const IoRecord& r : recorded) got.emplace_back(r.name, r.shape);
    for (const TensorSpec& t : wanted) want.emplace_back(t.name, t.axes);
    const char* what = side == 0 ? "inputs" : "outputs";
    if (got != want)
      throw ArtifactMismatchError(where + ": " + what + " " + io_str(got) + " differ from the config's " + io_str(want),
                                  rebuild);
    std::string bad;
    for (size_t i = 0; strict_dtype && i < recorded.size(); ++i)
      if (recorded[i].dtype != wanted[i].dtype) bad += (bad.empty() ? "'" : ", '") + recorded[i].name + "'";
    if (!bad.empty())
      throw ArtifactMismatchError(where + ": " + what + " [" + bad + "] are not " + wanted[0].dtype, rebuild);
  }
}

std::string unavailable(const std::string& name, const Manifest& m, const std::string& precision) {
  const std::string fmt = format_of(name);
  const bool have = std::any_of(m.artifacts.begin(), m.artifacts.end(),
                                [&](const Artifact& a) { return a.precision == precision && a.format == fmt; });
  if (!have) return "no " + precision + " " + fmt + " artifacts in the bundle";
  if (name == "tensorrt") return tensorrt_compiled() ? cuda_unavailable() : "this build has no TensorRT backend";
  if (name == "ort-cuda") {
    if (!ort_has_cuda()) return "onnxruntime has no CUDAExecutionProvider";
    return cuda_unavailable();
  }
  if (precision.rfind("bf16", 0) == 0 && precision != "bf16-emulated") return "ONNX Runtime's CPU provider has no bf16 MatMul";
  return "";
}

Opened open_bundle(const std::string& dir, const OpenOptions& o) {
  if (o.backend != "auto" && std::find(BACKENDS.begin(), BACKENDS.end(), o.backend) == BACKENDS.end())
    throw UsageError("unknown backend '" + o.backend + "'",
                     o.backend == "torch" ? "the C++ runtime has no PyTorch backend: use auto, tensorrt, ort-cuda or ort-cpu"
                                          : "use one of auto, tensorrt, ort-cuda, ort-cpu");
  Opened out;
  // with a trusted key, the signature over every file is checked first, before the manifest is read
  out.manifest = std::make_unique<Manifest>(Manifest::load(dir, o.trust));
  const Manifest& m = *out.manifest;
  std::error_code ec;
  out.signature = !o.trust.empty() ? "signed with the trusted key " + o.trust
                  : fs::exists(fs::symlink_status(m.dir / SIGNATURE_NAME, ec)) ? "signed, not checked (pass --trust KEY.pub)"
                                                                               : "unsigned";
  check_versions(m);
  m.verify_hashes();  // every file, not only the ones this backend reads: a bundle is whole or refused
  const auto specs = module_specs(m.config);
  std::vector<std::string> skipped;
  std::vector<std::string> names = o.backend == "auto" ? std::vector<std::string>(BACKENDS.begin(), BACKENDS.end())
                                                        : std::vector<std::string>{o.backend};
  for (const std::string& name : names) {
    const std::string why_not = unavailable(name, m, o.precision);
    if (!why_not.empty()) {
      if (o.backend != "auto")
        throw BackendError("backend " + name + " cannot run " + o.precision + " here: " + why_not,
                           "use --backend auto to take the fastest one that can");
      skipped.push_back(name + ": " + why_not);
      continue;
    }
    for (const char* module : MODULES) out.artifacts[module] = m.find(module, o.precision, format_of(name));
    for (const auto& item : out.artifacts) check_io(m, item.second, specs);
    out.limits = choose_limits(m, out.artifacts, o.profile, out.profiles);
    if (name == "tensorrt") {
      out.backend = make_tensorrt_backend(m, out.artifacts);
    } else {
      out.backend = std::make_unique<OrtBackend>(m, out.artifacts, name == "ort-cuda", o.intra_op_threads);
    }
    out.reason = "picked " + name;
    if (!skipped.empty()) {
      out.reason += " (passed over ";
      for (size_t i = 0; i < skipped.size(); ++i) out.reason += (i ? "; " : "") + skipped[i];
      out.reason += ")";
    }
    return out;
  }
  std::string all;
  for (size_t i = 0; i < skipped.size(); ++i) all += (i ? "; " : "") + skipped[i];
  throw BackendError(dir + ": no backend can run " + o.precision + " here (" + all + ")",
                     "use --precision fp32, or a machine with the backend the bundle was built for");
}

}  // namespace hrm
