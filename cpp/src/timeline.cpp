#include "hrm/timeline.hpp"

#include <stdexcept>

#include "hrm/decisions.hpp"

namespace hrm {

const char* Decision::action_name(size_t instrument) const { return ACTIONS.at(static_cast<size_t>(action.at(instrument))); }

Decision Timeline::at(int64_t minute) const {
  const int64_t i = minute - first_minute;
  if (i < 0 || i >= minutes)
    throw std::out_of_range("minute " + std::to_string(minute) + " outside " + std::to_string(first_minute) + ".." +
                            std::to_string(last_minute()));
  Decision d;
  d.minute = minute;
  for (int64_t b = 0; b < batch; ++b) {
    const size_t k = static_cast<size_t>(b * minutes + i);
    d.action.push_back(action[k]);
    d.confidence.push_back(confidence[k]);
    d.quantity.push_back(quantity[k]);
    d.q_halt.push_back(q_halt[k]);
    d.q_continue.push_back(q_continue[k]);
    d.halted.push_back(halted[k]);
    const int64_t h = halt_minute[static_cast<size_t>(b)];
    d.halt_minute.push_back(h >= 0 && h <= minute ? h : NOT_HALTED);
  }
  return d;
}

Timeline make_timeline(const Tensor& action_logits, const Tensor& quantity, const Tensor& q_values,
                       int64_t first_minute, int64_t session_minutes, const std::vector<int64_t>& halted_before) {
  // The order of the checks decides which non-finite output is named first: the heads' order.
  Actions a = actions(action_logits, first_minute);
  Timeline tl;
  tl.first_minute = first_minute;
  tl.batch = action_logits.shape[0];
  tl.minutes = action_logits.shape[1];
  if (quantity.rank() != 3 || q_values.rank() != 3 || quantity.shape[0] != tl.batch || q_values.shape[0] != tl.batch ||
      quantity.shape[1] != tl.minutes || q_values.shape[1] != tl.minutes)
    throw std::invalid_argument("heads disagree on (B, T): " + shape_str(action_logits.shape) + ", " +
                                shape_str(quantity.shape) + ", " + shape_str(q_values.shape));
  tl.quantity = quantities(quantity, first_minute);
  tl.halt_minute = halting_minutes(q_values, session_minutes, first_minute, halted_before);
  tl.action_logits = action_logits.data;
  tl.action = std::move(a.action);
  tl.confidence = std::move(a.confidence);
  const size_t n = static_cast<size_t>(tl.batch * tl.minutes);
  tl.q_halt.resize(n);
  tl.q_continue.resize(n);
  for (size_t i = 0; i < n; ++i) {
    tl.q_halt[i] = q_values.data[2 * i];
    tl.q_continue[i] = q_values.data[2 * i + 1];
  }
  tl.halted = halted(tl.halt_minute, first_minute, tl.minutes);
  return tl;
}

namespace {
// Append row b of a (B, T, k) field of `src` to `dst`.
template <class V>
void append_row(V& dst, const V& src, int64_t b, int64_t minutes, size_t k = 1) {
  auto first = src.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(b * minutes) * k);
  dst.insert(dst.end(), first, first + static_cast<std::ptrdiff_t>(static_cast<size_t>(minutes) * k));
}
}  // namespace

Timeline join_minutes(const std::vector<Timeline>& parts) {
  if (parts.empty()) throw std::invalid_argument("join_minutes of no timelines");
  Timeline out;
  out.first_minute = parts.front().first_minute;
  out.batch = parts.front().batch;
  int64_t next = out.first_minute;
  for (const Timeline& p : parts) {
    if (p.batch != out.batch || p.first_minute != next) throw std::invalid_argument("join_minutes: parts do not follow");
    next += p.minutes;
  }
  out.minutes = next - out.first_minute;
  for (int64_t b = 0; b < out.batch; ++b) {
    for (const Timeline& p : parts) {
      append_row(out.action_logits, p.action_logits, b, p.minutes, 3);
      append_row(out.action, p.action, b, p.minutes);
      append_row(out.confidence, p.confidence, b, p.minutes);
      append_row(out.quantity, p.quantity, b, p.minutes);
      append_row(out.q_halt, p.q_halt, b, p.minutes);
      append_row(out.q_continue, p.q_continue, b, p.minutes);
      append_row(out.halted, p.halted, b, p.minutes);
    }
  }
  out.halt_minute = parts.back().halt_minute;  // the halt state is the last part's
  return out;
}

Timeline join_batch(const std::vector<Timeline>& parts) {
  if (parts.empty()) throw std::invalid_argument("join_batch of no timelines");
  if (parts.size() == 1) return parts[0];
  Timeline out;
  out.first_minute = parts.front().first_minute;
  out.minutes = parts.front().minutes;
  for (const Timeline& p : parts) {
    if (p.first_minute != out.first_minute || p.minutes != out.minutes)
      throw std::invalid_argument("join_batch: parts cover different minutes");
    out.batch += p.batch;
    auto cat = [](auto& dst, const auto& src) { dst.insert(dst.end(), src.begin(), src.end()); };
    cat(out.action_logits, p.action_logits);
    cat(out.action, p.action);
    cat(out.confidence, p.confidence);
    cat(out.quantity, p.quantity);
    cat(out.q_halt, p.q_halt);
    cat(out.q_continue, p.q_continue);
    cat(out.halted, p.halted);
    cat(out.halt_minute, p.halt_minute);
  }
  return out;
}

}  // namespace hrm
