// Open a bundle, fail closed: every check runs before the first inference (hrm_export/runtime/loader.py).
//
// In order: with a trusted key, the signature over every file (signature.hpp); the manifest loads (format,
// config, artifact paths inside the bundle); the bundle was made by a compatible hrm-export, every artifact's
// sha256 matches, then for the backend:
// the chosen artifacts exist, their recorded I/O equals the config's spec, the profile exists and every
// artifact admits it, plans pass the TensorRT checks, and each graph's own I/O equals the record.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "backend.hpp"
#include "hrm/runtime.hpp"
#include "manifest.hpp"
#include "specs.hpp"

namespace hrm {

constexpr std::array<const char*, 3> BACKENDS = {"tensorrt", "ort-cuda", "ort-cpu"};

struct Opened {
  std::unique_ptr<Manifest> manifest;  // owned here: profiles are referred to by pointer
  std::unique_ptr<Backend> backend;
  std::map<std::string, Artifact> artifacts;  // module -> the artifact the backend runs
  std::vector<const Profile*> profiles;       // the profiles every chosen artifact admits
  Limits limits;
  std::string reason;
  std::string signature;  // as `hrm-export inspect` says it: checked with the trusted key, not checked, unsigned
};

Opened open_bundle(const std::string& dir, const OpenOptions& options);

// Why backend `name` cannot run this bundle at this precision here; empty if it can.
std::string unavailable(const std::string& name, const Manifest& m, const std::string& precision);

void check_versions(const Manifest& m);
void check_io(const Manifest& m, const Artifact& a, const std::map<std::string, ModuleSpec>& specs);

}  // namespace hrm
