// Opening a real exported bundle (tests/cpp/fixtures.py) fails closed on every tampering: changed, missing
// or corrupt files, a manifest whose I/O, dtypes, version or profile disagree, a graph that is not the one
// recorded, plans without a GPU, a signature required but missing. Each refusal is one typed error with a hint.
#include <gtest/gtest.h>

#include "helpers.hpp"
#include "hrm/runtime.hpp"
#include "manifest.hpp"
#include "sha256.hpp"

namespace {

hrm::OpenOptions cpu(const std::string& precision = "fp32") {
  hrm::OpenOptions o;
  o.backend = "ort-cpu";
  o.precision = precision;
  o.warmup = false;
  return o;
}

hrm::Json load(const fs::path& bundle) { return hrm::Json::parse(read_file(bundle / "manifest.json")); }
void save(const fs::path& bundle, const hrm::Json& j) { write_file(bundle / "manifest.json", j.dump(2)); }

hrm::Json& artifact(hrm::Json& j, const std::string& module, const std::string& precision = "fp32") {
  for (auto& a : j["artifacts"])
    if (a["module"] == module && a["precision"] == precision && a["format"] == "onnx") return a;
  throw std::runtime_error("fixture bundle has no " + module + "/" + precision);
}

TEST(Bundle, OpensAndSaysWhichBackendAndWhy) {
  hrm::Runtime rt = hrm::Runtime::open((fixtures() / "bundle").string(), cpu());
  EXPECT_EQ(rt.backend_name(), "ort-cpu");
  EXPECT_EQ(rt.reason(), "picked ort-cpu");
  EXPECT_EQ(rt.limits().profile, "small");
  hrm::OpenOptions o = cpu("int8-cpu");
  o.backend = "auto";
  hrm::Runtime auto_rt = hrm::Runtime::open((fixtures() / "bundle").string(), o);
  EXPECT_EQ(auto_rt.reason(), "picked ort-cpu (passed over tensorrt: no int8-cpu trt-plan artifacts in the bundle; "
                              "ort-cuda: onnxruntime has no CUDAExecutionProvider)");
}

TEST(Bundle, RefusesWhatItCannotRun) {
  const std::string dir = (fixtures() / "bundle").string();
  hrm::OpenOptions o = cpu();
  o.backend = "torch";
  EXPECT_REFUSED(hrm::Runtime::open(dir, o), hrm::UsageError, "unknown backend 'torch'");
  EXPECT_REFUSED(hrm::Runtime::open(dir, cpu("bf16")), hrm::BackendError,
                 "backend ort-cpu cannot run bf16 here: no bf16 onnx artifacts in the bundle");
  o = cpu();
  o.profile = "nope";
  EXPECT_REFUSED(hrm::Runtime::open(dir, o), hrm::ArtifactMismatchError,
                 "no artifact set built for profile 'nope' (bundle profiles: ['small'])");
}

TEST(Bundle, RefusesChangedMissingOrCorruptFiles) {
  TempDir tmp;
  const fs::path b = copy_bundle(tmp);
  std::string bytes = read_file(b / "l_step.onnx");
  bytes[bytes.size() / 2] ^= 1;
  write_file(b / "l_step.onnx", bytes);
  EXPECT_REFUSED(hrm::Runtime::open(b.string(), cpu()), hrm::ManifestError, "l_step.onnx: sha256");
  fs::remove(b / "l_step.onnx");
  EXPECT_REFUSED(hrm::Runtime::open(b.string(), cpu()), hrm::ManifestError, "listed in the manifest but missing");

  // garbage recorded with its own hash: the hashes pass, ONNX Runtime refuses it
  write_file(b / "l_step.onnx", "not an onnx graph");
  auto j = load(b);
  artifact(j, "l_step")["sha256"] = hrm::file_sha256(b / "l_step.onnx");
  save(b, j);
  EXPECT_REFUSED(hrm::Runtime::open(b.string(), cpu()), hrm::ArtifactMismatchError, "ONNX Runtime cannot load it");

  // a real graph, but not the one the manifest records: its own I/O gives it away
  fs::copy_file(b / "h_module.onnx", b / "l_step.onnx", fs::copy_options::overwrite_existing);
  artifact(j, "l_step")["sha256"] = hrm::file_sha256(b / "l_step.onnx");
  save(b, j);
  EXPECT_REFUSED(hrm::Runtime::open(b.string(), cpu()), hrm::ArtifactMismatchError,
                 "graph inputs ['days'] differ from ['minutes', 'film_gamma', 'film_beta', 'past_kv']");
}

TEST(Bundle, RefusesAManifestThatDisagreesWithTheConfig) {
  TempDir tmp;
  const fs::path b = copy_bundle(tmp);
  const hrm::Json good = load(b);
  auto j = good;
  artifact(j, "l_module")["inputs"][0]["name"] = "minute";
  save(b, j);
  EXPECT_REFUSED(hrm::Runtime::open(b.string(), cpu()), hrm::ArtifactMismatchError,
                 "inputs [('minute', ['batch', 'minutes', 11])");
  j = good;
  artifact(j, "h_module")["outputs"][1]["dtype"] = "float16";
  save(b, j);
  EXPECT_REFUSED(hrm::Runtime::open(b.string(), cpu()), hrm::ArtifactMismatchError,
                 "outputs ['film_gamma'] are not float32");
  j = good;
  j["config"]["l_layers"] = 3;  // the graphs hold 2 layers of K/V
  save(b, j);
  EXPECT_REFUSED(hrm::Runtime::open(b.string(), cpu()), hrm::ArtifactMismatchError, "differ from the config's");
  j = good;
  j["versions"]["hrm_export"] = "9.0.0";
  save(b, j);
  EXPECT_REFUSED(hrm::Runtime::open(b.string(), cpu()), hrm::ArtifactMismatchError, "made by hrm-export 9.0.0");
  j = good;
  artifact(j, "l_step")["path"] = "../bundle/l_step.onnx";
  save(b, j);
  EXPECT_REFUSED(hrm::Runtime::open(b.string(), cpu()), hrm::ManifestError, "leaves the bundle");
  save(b, good);
  write_file(b / "model.sig", "{}");  // without a trusted key a signature is not checked, as in Python
  EXPECT_EQ(hrm::Runtime::open(b.string(), cpu()).signature(), "signed, not checked (pass --trust KEY.pub)");
  hrm::OpenOptions trusted = cpu();
  trusted.trust = (tmp / "nope.pub").string();
  EXPECT_REFUSED(hrm::Runtime::open(b.string(), trusted), hrm::UsageError, "nope.pub: no such key file");
  fs::remove(b / "model.sig");
  write_file(tmp / "key.pub", "-----BEGIN PUBLIC KEY-----\n");
  trusted.trust = (tmp / "key.pub").string();
  EXPECT_REFUSED(hrm::Runtime::open(b.string(), trusted), hrm::SignatureError, "not signed (no model.sig)");
  EXPECT_EQ(hrm::Runtime::open(b.string(), cpu()).signature(), "unsigned");
}

TEST(Bundle, RefusesASymlinkOutOfTheBundle) {
  TempDir tmp;
  const fs::path b = copy_bundle(tmp);
  fs::copy_file(b / "h_module.onnx", tmp / "elsewhere.onnx");
  fs::remove(b / "h_module.onnx");
  fs::create_symlink(tmp / "elsewhere.onnx", b / "h_module.onnx");  // same bytes, same hash, outside
  EXPECT_REFUSED(hrm::Runtime::open(b.string(), cpu()), hrm::ManifestError, "outside the bundle");
}

TEST(Bundle, TensorRTPlansWithoutAGpuAreRefusedBeforeDeserializing) {
  TempDir tmp;
  const fs::path b = copy_bundle(tmp);
  auto j = load(b);
  std::string plan = "ftrt" + std::string(20, '\0') + std::string{10, 14, 1, 48} + std::string(64, 'x');
  for (const char* module : {"h_module", "l_module", "l_step"}) {
    hrm::Json a = artifact(j, module);
    a["format"] = "trt-plan";
    a["path"] = std::string(module) + ".plan";
    write_file(b / a["path"].get<std::string>(), plan);
    a["sha256"] = hrm::file_sha256(b / a["path"].get<std::string>());
    a["extra"] = {{"tensorrt_version", "10.14.1.48"}, {"compute_capability", "9.0"}, {"version_compatible", true}};
    j["artifacts"].push_back(a);
  }
  save(b, j);
  hrm::OpenOptions o = cpu();
  o.backend = "tensorrt";
  EXPECT_REFUSED(hrm::Runtime::open(b.string(), o), hrm::BackendError, "backend tensorrt cannot run fp32 here: no CUDA");
  o.backend = "auto";
  EXPECT_NE(hrm::Runtime::open(b.string(), o).reason().find("picked ort-cpu (passed over tensorrt: no CUDA"),
            std::string::npos);
}

}  // namespace
