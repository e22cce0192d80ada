// One module of the bundle as the manifest records it: tensors bound by name, shapes checked against the
// artifact's profiles before the backend runs, outputs shaped from the recorded axes.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "backend.hpp"
#include "hrm/config.hpp"
#include "manifest.hpp"

namespace hrm {

using Feeds = std::map<std::string, const Tensor*>;

class ModuleCall {
 public:
  ModuleCall(Artifact artifact, const Backend& backend, const Config& cfg, std::vector<const Profile*> profiles)
      : artifact_(std::move(artifact)), backend_(&backend), cfg_(cfg), profiles_(std::move(profiles)) {}

  // Outputs by name. ProfileError/UsageError before anything runs if the feeds do not fit the artifact.
  std::map<std::string, Tensor> run(const Feeds& feeds) const;
  const Artifact& artifact() const { return artifact_; }

 private:
  Artifact artifact_;
  const Backend* backend_;
  Config cfg_;
  std::vector<const Profile*> profiles_;
};

}  // namespace hrm
