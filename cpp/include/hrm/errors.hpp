// Typed errors of the C++ runtime: every refusal is one line naming what is wrong (what()) and a hint
// saying the fix, as in the Python runtime (hrm_export/runtime/errors.py). A refused call never changes a
// session, so the caller can fix the input and go on.
#pragma once

#include <stdexcept>
#include <string>

namespace hrm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string hint = "")
      : std::runtime_error(message), hint_(std::move(hint)) {}
  const std::string& hint() const noexcept { return hint_; }

 private:
  std::string hint_;
};

// A call the runtime cannot make sense of: unknown backend or precision, a bad command-line flag.
class UsageError : public Error {
 public:
  using Error::Error;
};

// A bundle whose manifest is missing or corrupt, or disagrees with the files (missing, changed, outside).
class ManifestError : public Error {
 public:
  using Error::Error;
};

// An artifact this runtime would not run: I/O signature, versions, profile set, plan, GPU.
class ArtifactMismatchError : public ManifestError {
 public:
  using ManifestError::ManifestError;
};

// A signature required (a trusted key) but missing, made with another key, or not over exactly the bundle's files.
class SignatureError : public ArtifactMismatchError {
 public:
  using ArtifactMismatchError::ArtifactMismatchError;
};

// A shape outside the profile the artifacts were built for.
class ProfileError : public Error {
 public:
  using Error::Error;
};

// Tokens the model cannot take: wrong rank, batch or feature count, NaN/Inf, a file that is no float array.
class InputError : public Error {
 public:
  using Error::Error;
};

// Minutes pushed out of order: a gap, a repeat, a start_minute that is not the next minute.
class SequenceError : public Error {
 public:
  using Error::Error;
};

// A push before start_day(): the session has no γ, β for the day yet.
class NotStartedError : public Error {
 public:
  using Error::Error;
};

// A push past the last minute the model or profile admits for one session.
class SessionFullError : public Error {
 public:
  using Error::Error;
};

// A backend that cannot run here (no CUDA device, no provider) or failed while running.
class BackendError : public Error {
 public:
  using Error::Error;
};

// A model output that is NaN or infinite where a decision would be made from it.
class NonFiniteOutputError : public Error {
 public:
  NonFiniteOutputError(const std::string& message, std::string output, int instrument, int minute)
      : Error(message, "the artifact produced NaN/Inf: check its weights, or re-export the bundle"),
        output(std::move(output)), instrument(instrument), minute(minute) {}
  std::string output;
  int instrument;
  int minute;
};

}  // namespace hrm
