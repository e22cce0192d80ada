// DIR/manifest.json as hrm_export/manifest.py writes it: what a bundle holds and the hashes that prove it.
// Loading checks the format, the config and every artifact path (contained in the bundle); verify_hashes()
// checks every artifact's sha256 with OpenSSL.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hrm/config.hpp"
#include "inputs.hpp"

namespace hrm {

using Json = nlohmann::ordered_json;  // key order as written: profiles are picked in that order
namespace fs = std::filesystem;

constexpr const char* MANIFEST_NAME = "manifest.json";
constexpr const char* MANIFEST_FORMAT = "hrm-export/manifest-v1";

// One axis of a tensor: a fixed size or a named dynamic axis ("batch", "minutes", ...).
struct Axis {
  int64_t size = -1;
  std::string name;
  bool dynamic() const { return !name.empty(); }
  bool operator==(const Axis& o) const { return size == o.size && name == o.name; }
};
std::string axes_str(const std::vector<Axis>& axes);  // ['batch', 390, 11], as Python prints the list

struct IoRecord {
  std::string name;
  std::string dtype;
  std::vector<Axis> shape;
};

struct Artifact {
  std::string module, precision, format, path, sha256;
  std::vector<IoRecord> inputs, outputs;
  std::optional<int64_t> opset;
  std::vector<std::string> profiles;  // the profiles this artifact admits
  Json extra;                         // e.g. tensorrt_version, compute_capability
};

struct Profile {
  std::string name;
  std::map<std::string, std::array<int64_t, 3>> axes;  // axis -> (min, opt, max)
};

struct Manifest {
  fs::path dir;
  Config config;
  Json versions, checkpoint;
  std::vector<Profile> profiles;  // in the manifest's order
  std::vector<Artifact> artifacts;
  // token_ranges: each feature's valid range per book; empty when the bundle records none (made before them)
  std::optional<TokenBook> days_range, minutes_range;

  // DIR or DIR/manifest.json. ManifestError when missing or corrupt, or when an artifact path leaves DIR.
  // `trust`: the PEM public key the bundle must be signed with; the signature and every file's digest are
  // checked before the manifest is read (SignatureError). Empty: no signature required, none checked.
  static Manifest load(const fs::path& dir_or_file, const std::string& trust = "");
  const Artifact& find(const std::string& module, const std::string& precision, const std::string& format) const;
  const Profile* profile(const std::string& name) const;
  // The artifact's file, checked to stay inside the bundle once symlinks are resolved.
  fs::path artifact_path(const Artifact& a) const;
  void verify_hashes() const;  // ManifestError naming the first missing or changed artifact
};

std::string rebuild_hint(const std::string& precision, const std::string& format, const fs::path& dir);

// Config fields as model_src.config.HRMConfig.from_dict reads them: an unknown field or a broken invariant
// throws std::invalid_argument (the manifest loader turns it into "corrupt manifest").
Config config_from_json(const Json& j);

// The bundle signature check, as Manifest.load(dir, trust=...) in Python: with a trusted key (a PEM file),
// DIR/model.sig must be that key's signature over exactly the files DIR holds (signature.hpp); without one,
// no signature is required and none is checked (a signed bundle opens, its manifest hashes still checked).
void check_bundle_signature(const fs::path& dir, const std::string& trust);

}  // namespace hrm
