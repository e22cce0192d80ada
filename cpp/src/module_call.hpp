// One module of the bundle as the manifest records it: tensors bound by name, shapes checked against the
// artifact's profiles before the backend runs, outputs shaped from the recorded axes.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "backend.hpp"
#include "buffer_pool.hpp"
#include "hrm/config.hpp"
#include "manifest.hpp"

namespace hrm {

using Feeds = std::map<std::string, const Tensor*>;

class ModuleCall {
 public:
  // `pool` (may be null) supplies the storage of large outputs.
  ModuleCall(Artifact artifact, const Backend& backend, const Config& cfg, std::vector<const Profile*> profiles,
             std::shared_ptr<BufferPool> pool = nullptr)
      : artifact_(std::move(artifact)), backend_(&backend), cfg_(cfg), profiles_(std::move(profiles)),
        pool_(std::move(pool)) {}

  // Outputs by name. ProfileError/UsageError before anything runs if the feeds do not fit the artifact.
  std::map<std::string, Tensor> run(const Feeds& feeds) const;
  const Artifact& artifact() const { return artifact_; }

 private:
  Artifact artifact_;
  const Backend* backend_;
  Config cfg_;
  std::vector<const Profile*> profiles_;
  std::shared_ptr<BufferPool> pool_;
};

}  // namespace hrm
