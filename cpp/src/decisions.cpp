// The decision rule; see decisions.hpp and its one definition, model_src/decisions.py.
#include "hrm/decisions.hpp"

#include <cmath>
#include <sstream>

#include "hrm/errors.hpp"

namespace hrm {

namespace {
// The Python rule prints the bad value as numpy does: nan, inf, -inf.
std::string value_str(float v) {
  if (std::isnan(v)) return "nan";
  return v > 0 ? "inf" : "-inf";
}

void need_rank3(const char* name, const Tensor& x, int64_t last) {
  if (x.rank() != 3 || (last > 0 && x.shape[2] != last))
    throw std::invalid_argument(std::string(name) + ": shape " + shape_str(x.shape) + " is not (B, T, " +
                                std::to_string(last) + ")");
}
}  // namespace

void check_finite(const char* name, const Tensor& x, int64_t first_minute) {
  if (x.rank() < 2) throw std::invalid_argument(std::string(name) + ": expected (B, T, ...)");
  const size_t per_minute = x.numel() / static_cast<size_t>(std::max<int64_t>(1, x.shape[0] * x.shape[1]));
  for (size_t i = 0; i < x.numel(); ++i) {
    if (!std::isfinite(x.data[i])) {
      const size_t bt = i / per_minute;
      const int b = static_cast<int>(bt / static_cast<size_t>(x.shape[1]));
      const int minute = static_cast<int>(first_minute + static_cast<int64_t>(bt % static_cast<size_t>(x.shape[1])));
      std::ostringstream msg;
      msg << name << ": non-finite value " << value_str(x.data[i]) << " at instrument " << b << ", minute " << minute;
      throw NonFiniteOutputError(msg.str(), name, b, minute);
    }
  }
}

Actions actions(const Tensor& action_logits, int64_t first_minute) {
  need_rank3("action_logits", action_logits, static_cast<int64_t>(ACTIONS.size()));
  check_finite("action_logits", action_logits, first_minute);
  const size_t n = action_logits.numel() / 3;
  Actions out;
  out.action.resize(n);
  out.confidence.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float* l = &action_logits.data[3 * i];
    const double x[3] = {l[0], l[1], l[2]};
    int64_t best = 0;  // strict >: the lowest index wins an exact tie (numpy's argmax)
    for (int64_t k = 1; k < 3; ++k)
      if (x[k] > x[best]) best = k;
    // softmax in double as numpy computes it: shift by the max, exp, sum left to right, divide
    const double p[3] = {std::exp(x[0] - x[best]), std::exp(x[1] - x[best]), std::exp(x[2] - x[best])};
    const double sum = (p[0] + p[1]) + p[2];
    double confidence = p[0] / sum;
    for (int k = 1; k < 3; ++k) confidence = std::max(confidence, p[k] / sum);
    out.action[i] = best;
    out.confidence[i] = confidence;
  }
  return out;
}

std::vector<double> quantities(const Tensor& quantity, int64_t first_minute) {
  need_rank3("quantity", quantity, 1);
  check_finite("quantity", quantity, first_minute);
  return std::vector<double>(quantity.data.begin(), quantity.data.end());
}

std::vector<int64_t> halting_minutes(const Tensor& q_values, int64_t session_minutes, int64_t first_minute,
                                     const std::vector<int64_t>& halted_at) {
  need_rank3("q_values", q_values, 2);
  const int64_t B = q_values.shape[0], T = q_values.shape[1];
  if (!halted_at.empty() && static_cast<int64_t>(halted_at.size()) != B)
    throw std::invalid_argument("halted_at has " + std::to_string(halted_at.size()) + " entries for batch " +
                                std::to_string(B));
  check_finite("q_values", q_values, first_minute);
  const int64_t close = session_minutes - 1;
  std::vector<int64_t> out(static_cast<size_t>(B), NOT_HALTED);
  for (int64_t b = 0; b < B; ++b) {
    if (!halted_at.empty() && halted_at[static_cast<size_t>(b)] >= 0) {  // sticky: an earlier halt stands
      out[static_cast<size_t>(b)] = halted_at[static_cast<size_t>(b)];
      continue;
    }
    for (int64_t t = 0; t < T && first_minute + t <= close; ++t) {  // minutes past the close are padding
      const float* q = &q_values.data[static_cast<size_t>((b * T + t) * 2)];
      if (q[0] > q[1]) {
        out[static_cast<size_t>(b)] = first_minute + t;
        break;
      }
    }
    if (out[static_cast<size_t>(b)] == NOT_HALTED && first_minute <= close && close <= first_minute + T - 1)
      out[static_cast<size_t>(b)] = close;  // the close always commits
  }
  return out;
}

std::vector<uint8_t> halted(const std::vector<int64_t>& halt_minute, int64_t first_minute, int64_t minutes) {
  std::vector<uint8_t> out(halt_minute.size() * static_cast<size_t>(minutes), 0);
  for (size_t b = 0; b < halt_minute.size(); ++b)
    for (int64_t t = 0; t < minutes; ++t)
      out[b * static_cast<size_t>(minutes) + static_cast<size_t>(t)] =
          halt_minute[b] >= 0 && first_minute + t >= halt_minute[b];
  return out;
}

}  // namespace hrm
