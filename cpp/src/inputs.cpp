#include "inputs.hpp"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "hrm/errors.hpp"

namespace hrm {

void check_tokens(const Tensor& x, const char* name, int64_t n_features, int64_t batch, const TokenBook* book,
                  int64_t first) {
  const std::string n = name, f = std::to_string(n_features);
  size_t expected = 0;
  try {
    expected = numel(x.shape);
  } catch (const std::length_error& e) {
    throw InputError(n + ": " + e.what(), "pass tokens as an array of shape (batch, steps, features)");
  }
  if (expected != x.data.size())  // a hand-built Tensor whose data does not fill its shape
    throw InputError(n + ": shape " + shape_str(x.shape) + " needs " + std::to_string(expected) + " values, the tensor holds " +
                         std::to_string(x.data.size()),
                     "build the tensor with hrm::Tensor(shape, data)");
  if (x.rank() == 2)
    throw InputError(n + ": shape " + shape_str(x.shape) + " has no batch axis; expected (batch, steps, " + f + ")",
                     "add the instrument axis: shape (1, steps, features) for one instrument");
  if (x.rank() != 3)
    throw InputError(n + ": shape " + shape_str(x.shape) + " is not (batch, steps, " + f + ")",
                     "pass a 3-d array: instruments × steps × features");
  if (x.shape[2] != n_features)
    throw InputError(n + ": " + std::to_string(x.shape[2]) + " features per step, the model takes " + f,
                     "build tokens with model_src.features for the model's feature set");
  if (batch >= 0 && x.shape[0] != batch)
    throw InputError(n + ": batch " + std::to_string(x.shape[0]) + " but this session holds " + std::to_string(batch) +
                         " instrument(s)",
                     "push one row per instrument of the session, in the order of start_day");
  if (x.shape[0] < 1 || x.shape[1] < 1)
    throw InputError(n + ": shape " + shape_str(x.shape) + " is empty", "pass at least one step per instrument");
  for (size_t i = 0; i < x.data.size(); ++i) {
    if (!std::isfinite(x.data[i])) {
      const size_t F = static_cast<size_t>(x.shape[2]), T = static_cast<size_t>(x.shape[1]);
      std::ostringstream msg;
      msg << n << ": non-finite value " << (std::isnan(x.data[i]) ? "nan" : x.data[i] > 0 ? "inf" : "-inf")
          << " at instrument " << i / (T * F) << ", step " << (i / F) % T << ", feature " << i % F;
      throw InputError(msg.str(), "fill or drop missing bars before tokenising (the model has no NaN semantics)");
    }
  }
  if (book == nullptr) return;
  // The first value outside its feature's range, named as hrm_export.runtime.inputs.check_values names it.
  const size_t F = static_cast<size_t>(x.shape[2]), T = static_cast<size_t>(x.shape[1]);
  size_t bad = x.data.size(), outside = 0;
  for (size_t i = 0; i < x.data.size(); ++i) {
    const size_t k = i % F;
    if (x.data[i] < book->low[k] || x.data[i] > book->high[k]) {
      if (bad == x.data.size()) bad = i;
      ++outside;
    }
  }
  if (outside == 0) return;
  const size_t k = bad % F;
  const int64_t step = first + static_cast<int64_t>((bad / F) % T);
  std::ostringstream msg;
  msg << n << ": value " << std::setprecision(6) << x.data[bad] << " at instrument " << bad / (T * F) << ", "
      << (n == "minutes" ? "session minute " : "look-back day ") << step << ", feature " << k << " (" << book->names[k]
      << ") is outside the feature's valid range [" << book->low[k] << ", " << book->high[k] << "] (" << outside
      << " value(s) outside)";
  throw InputError(msg.str(), "pass tokens made by model_src.features (every feature is bounded), not raw prices or "
                              "unscaled values; the bundle's manifest lists each range under token_ranges");
}

void check_days(const Tensor& days, const Limits& limits) {
  if (days.shape[1] > limits.days)
    throw ProfileError("days: " + std::to_string(days.shape[1]) + " look-back days, profile '" + limits.profile +
                           "' admits at most " + std::to_string(limits.days),
                       "pass the latest " + std::to_string(limits.days) + " days or export with a larger profile");
}

void check_session_minutes(const Tensor& minutes, const Limits& limits) {
  if (minutes.shape[1] > limits.minutes)
    throw ProfileError("minutes: " + std::to_string(minutes.shape[1]) + " minutes, profile '" + limits.profile +
                           "' admits at most " + std::to_string(limits.minutes),
                       "a session has at most that many minutes; split the input by trading day");
}

}  // namespace hrm
