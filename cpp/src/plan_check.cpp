#include "plan_check.hpp"

#include <fstream>

#include "hrm/errors.hpp"

namespace hrm {

namespace {
constexpr size_t HEADER_SIZE = 28;

std::string rebuild_command(const Manifest& m, const Artifact& a) {
  return "hrm-export build --out " + m.dir.string() + " --precision " + a.precision + " --require-tensorrt";
}

std::array<int, 3> parse_release(const std::string& text, const std::string& where) {
  std::array<int, 3> out{};
  size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    size_t end = text.find('.', pos);
    const std::string part = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (part.empty() || part.size() > 6 || part.find_first_not_of("0123456789") != std::string::npos)
      throw ArtifactMismatchError(where + ": bad TensorRT version '" + text + "'; expected digits and dots like 10.13.0.35",
                                  "rebuild the plan with hrm-export build");
    out[static_cast<size_t>(i)] = std::stoi(part);
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return out;
}

std::string release_str(const std::array<int, 3>& r) {
  return std::to_string(r[0]) + "." + std::to_string(r[1]) + "." + std::to_string(r[2]);
}

std::string extra_str(const Json& extra, const char* key) {
  const Json& v = extra.at(key);
  return v.is_string() ? v.get<std::string>() : v.dump();
}
}  // namespace

std::string PlanHeader::version_str() const {
  return std::to_string(version[0]) + "." + std::to_string(version[1]) + "." + std::to_string(version[2]) + "." +
         std::to_string(version[3]);
}

PlanHeader parse_plan_header(const std::string& head, const std::string& source) {
  const std::string rebuild = "pass a plan written by `hrm-export build` (TensorRT >= 8.6), or rebuild it";
  if (head.size() < HEADER_SIZE)
    throw ArtifactMismatchError(source + ": " + std::to_string(head.size()) +
                                    " bytes, too short to be a TensorRT plan (header is 28)", rebuild);
  if (head.compare(0, 4, "ftrt") != 0)
    throw ArtifactMismatchError(source + ": not a TensorRT plan (a plan starts with b'ftrt')", rebuild);
  PlanHeader h;
  for (int i = 0; i < 4; ++i) h.serialization |= static_cast<uint32_t>(static_cast<unsigned char>(head[4 + i])) << (8 * i);
  if (h.serialization != 0)
    throw ArtifactMismatchError(source + ": plan serialization version " + std::to_string(h.serialization) +
                                    " has no known header layout",
                                "inspect it with TensorRT installed (`trtexec --getPlanVersionOnly --loadEngine=...`)");
  for (int i = 0; i < 4; ++i) h.version[static_cast<size_t>(i)] = static_cast<unsigned char>(head[24 + i]);
  return h;
}

PlanHeader read_plan_header(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ArtifactMismatchError(path.string() + ": no such plan file", "build it: hrm-export build --out DIR");
  std::string head(HEADER_SIZE, '\0');
  in.read(head.data(), HEADER_SIZE);
  head.resize(static_cast<size_t>(in.gcount()));
  return parse_plan_header(head, path.string());
}

void check_plan_offline(const Manifest& m, const Artifact& a, const TrtHere& here) {
  const std::string where = m.dir.string() + "/" + a.path, rebuild = rebuild_command(m, a);
  std::string missing;
  for (const char* key : {"tensorrt_version", "compute_capability"})
    if (!a.extra.is_object() || !a.extra.contains(key)) missing += (missing.empty() ? "'" : ", '") + std::string(key) + "'";
  if (!missing.empty()) throw ArtifactMismatchError(where + ": manifest lacks [" + missing + "] for this plan", rebuild);
  const PlanHeader header = read_plan_header(m.artifact_path(a));
  const std::string recorded_text = extra_str(a.extra, "tensorrt_version");
  const auto recorded = parse_release(recorded_text, where);
  const std::array<int, 3> built = {header.version[0], header.version[1], header.version[2]};
  if (built != recorded)
    throw ArtifactMismatchError(where + ": header says TensorRT " + header.version_str() + " but the manifest records " +
                                    recorded_text + "; the file was replaced after the build",
                                "rebuild it: " + rebuild);
  // Before anything is deserialized: a plan of another major crashes or fails inside the library.
  if (built[0] != here.header_major || built[0] != here.library[0])
    throw ArtifactMismatchError(where + ": built with TensorRT " + header.version_str() + ", this runtime is compiled "
                                    "against TensorRT " + std::to_string(here.header_major) + " and links " +
                                    release_str(here.library) + " (the majors must match)",
                                "rebuild it here: " + rebuild);
  const bool version_compatible = a.extra.value("version_compatible", false);
  if (here.lean && !version_compatible)
    throw ArtifactMismatchError(where + ": built without --version-compatible; the TensorRT lean runtime this build "
                                    "links runs version-compatible plans only",
                                "rebuild it: " + rebuild + " --version-compatible");
  const bool ok = version_compatible ? here.library[0] == built[0] && here.library >= built : here.library == built;
  if (!ok)
    throw ArtifactMismatchError(where + ": built with TensorRT " + header.version_str() + ", running TensorRT " +
                                    release_str(here.library) + " (" +
                                    (version_compatible ? "version-compatible: same major, same or later release"
                                                        : "same release") + "); rebuild: " + rebuild,
                                "rebuild it here: " + rebuild);
}

void check_plan_device(const Manifest& m, const Artifact& a, const TrtHere& here, std::pair<int, int> device_cc) {
  (void)here;
  const std::string where = m.dir.string() + "/" + a.path, rebuild = rebuild_command(m, a);
  const std::string cc_text = extra_str(a.extra, "compute_capability");
  const size_t dot = cc_text.find('.');
  std::pair<int, int> plan_cc{-1, -1};
  try {
    if (dot == std::string::npos) throw std::invalid_argument("no dot");
    plan_cc = {std::stoi(cc_text.substr(0, dot)), std::stoi(cc_text.substr(dot + 1))};
  } catch (const std::exception&) {
    throw ArtifactMismatchError(where + ": bad compute capability '" + cc_text + "'; expected MAJOR.MINOR like 9.0",
                                "rebuild it here: " + rebuild);
  }
  const std::string hw = a.extra.value("hardware_compatibility", std::string("none"));
  const bool ok = hw == "ampere+" ? device_cc >= std::pair<int, int>{8, 0} : device_cc == plan_cc;
  if (!ok)
    throw ArtifactMismatchError(where + ": built for compute capability " + std::to_string(plan_cc.first) + "." +
                                    std::to_string(plan_cc.second) + ", this GPU is " + std::to_string(device_cc.first) +
                                    "." + std::to_string(device_cc.second) + " (" +
                                    (hw == "ampere+" ? "ampere+: compute capability >= 8.0" : "same compute capability") +
                                    "); rebuild: " + rebuild,
                                "rebuild it here: " + rebuild);
}

}  // namespace hrm
