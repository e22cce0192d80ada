// Opening a bundle's manifest fails closed: missing or corrupt, wrong format, bad config, artifact paths
// out of the bundle (.., absolute, symlinks), missing or changed files; a signature checked with a key only.
#include <gtest/gtest.h>

#include "helpers.hpp"
#include "manifest.hpp"
#include "sha256.hpp"

namespace {

const char* ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";  // sha256("abc")

hrm::Json manifest_with(const std::string& path, const std::string& sha = ABC_SHA256) {
  return {{"format", "hrm-export/manifest-v1"},
          {"config", {{"l_dim", 48}, {"l_heads", 4}}},
          {"artifacts", {{{"module", "h_module"}, {"precision", "fp32"}, {"format", "onnx"}, {"path", path}, {"sha256", sha}}}}};
}

void save(const fs::path& dir, const hrm::Json& j) { write_file(dir / "manifest.json", j.dump(2)); }

TEST(Manifest, HashesWithOpenSSL) {
  TempDir tmp;
  write_file(tmp / "abc", "abc");
  EXPECT_EQ(hrm::file_sha256(tmp / "abc"), ABC_SHA256);
}

TEST(Manifest, LoadsAndVerifiesAWholeBundle) {
  TempDir tmp;
  write_file(tmp / "a.onnx", "abc");
  save(tmp.path, manifest_with("a.onnx"));
  const hrm::Manifest m = hrm::Manifest::load(tmp.path);
  EXPECT_EQ(m.config.l_dim, 48);
  EXPECT_EQ(m.config.h_dim, 384);  // the HRMConfig default for a field the manifest leaves out
  m.verify_hashes();
  EXPECT_EQ(hrm::Manifest::load(tmp / "manifest.json").dir, tmp.path);
}

TEST(Manifest, RefusesAMissingOrCorruptManifest) {
  TempDir tmp;
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path), hrm::ManifestError, "no manifest.json");
  write_file(tmp / "manifest.json", "{\"format\": \"hrm-export/manifest-v1\", ");
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path), hrm::ManifestError, "corrupt manifest");
  auto j = manifest_with("a.onnx");
  j["format"] = "something-else";
  save(tmp.path, j);
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path), hrm::ManifestError,
                 "format 'something-else', expected 'hrm-export/manifest-v1'");
  j = manifest_with("a.onnx");
  j["config"]["l_layrs"] = 2;
  save(tmp.path, j);
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path), hrm::ManifestError, "unknown HRMConfig field(s) ['l_layrs']");
  j = manifest_with("a.onnx");
  j["config"]["l_heads"] = 0;  // would divide by zero
  save(tmp.path, j);
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path), hrm::ManifestError, "corrupt manifest");
  j = manifest_with("a.onnx");
  j["config"]["l_dim"] = "48";
  save(tmp.path, j);
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path), hrm::ManifestError, "l_dim is not an integer");
  j = manifest_with("a.onnx");
  j["config"]["film_pool"] = "max";
  save(tmp.path, j);
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path), hrm::ManifestError, "film_pool is not one of");
  j = manifest_with("a.onnx");
  j["config"]["film_pool"] = "mean_last";  // pooled inside the H graph: the runtime only checks the name
  save(tmp.path, j);
  EXPECT_EQ(hrm::Manifest::load(tmp.path).config.film_pool, "mean_last");
  j = manifest_with("a.onnx");
  j["artifacts"][0].erase("sha256");
  save(tmp.path, j);
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path), hrm::ManifestError, "missing key 'sha256'");
  j = manifest_with("a.onnx");
  j["profiles"] = {{"p", {{"axes", {{"batch", {1, 1, 0}}}}}}};  // a batch of 0 would never finish chunking
  save(tmp.path, j);
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path), hrm::ManifestError, "axis batch = [1, 1, 0] is not min <= opt <= max");
  save(tmp.path, hrm::Json::array());
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path), hrm::ManifestError, "not a JSON object");
}

TEST(Manifest, RefusesArtifactPathsOutOfTheBundle) {
  TempDir tmp, outside;
  write_file(outside / "a.onnx", "abc");
  for (const std::string& p : std::vector<std::string>{"../a.onnx", "sub/../../a.onnx", (outside / "a.onnx").string(), ""}) {
    save(tmp.path, manifest_with(p));
    EXPECT_REFUSED(hrm::Manifest::load(tmp.path), hrm::ManifestError, "leaves the bundle");
  }
  fs::create_symlink(outside / "a.onnx", tmp / "a.onnx");  // inside by name, outside in fact
  save(tmp.path, manifest_with("a.onnx"));
  const hrm::Manifest m = hrm::Manifest::load(tmp.path);
  EXPECT_REFUSED(m.verify_hashes(), hrm::ManifestError, "outside the bundle");
}

TEST(Manifest, RefusesMissingOrChangedArtifacts) {
  TempDir tmp;
  save(tmp.path, manifest_with("a.onnx"));
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path).verify_hashes(), hrm::ManifestError, "listed in the manifest but missing");
  write_file(tmp / "a.onnx", "abd");
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path).verify_hashes(), hrm::ManifestError,
                 "differs from the manifest's ba7816bf8f01");
  fs::remove(tmp / "a.onnx");
  fs::create_directory(tmp / "a.onnx");
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path).verify_hashes(), hrm::ManifestError, "not a file");
}

TEST(Manifest, ASignatureIsCheckedOnlyWithATrustedKey) {  // as Manifest.load(dir, trust=None) in Python
  TempDir tmp;
  write_file(tmp / "a.onnx", "abc");
  save(tmp.path, manifest_with("a.onnx"));
  write_file(tmp / "model.sig", "{}");
  hrm::Manifest::load(tmp.path).verify_hashes();
  write_file(tmp / "key.pub", "not a key");
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path, (tmp / "key.pub").string()), hrm::UsageError, "not an EC public key");
  fs::remove(tmp / "model.sig");
  EXPECT_REFUSED(hrm::Manifest::load(tmp.path, (tmp / "key.pub").string()), hrm::SignatureError,
                 "not signed (no model.sig), and a signature is required");
}

}  // namespace
