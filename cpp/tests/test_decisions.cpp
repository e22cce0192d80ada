// The decision rule against model_src/decisions.py's definition: ties, float64 confidence, strict and
// sticky halting, the close, non-finite refusals naming output, instrument and minute.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "hrm/decisions.hpp"
#include "hrm/errors.hpp"
#include "hrm/timeline.hpp"

namespace {

hrm::Tensor q_of(std::vector<std::vector<std::pair<float, float>>> rows) {  // rows[b][t] = (q_halt, q_continue)
  std::vector<float> data;
  for (auto& r : rows)
    for (auto& [h, c] : r) data.insert(data.end(), {h, c});
  return hrm::Tensor({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size()), 2}, data);
}

TEST(Decisions, ArgmaxTakesTheLowestIndexOnAnExactTie) {
  const hrm::Tensor logits({1, 3, 3}, {1, 1, 0, 0, 2, 2, 5, 5, 5});
  const auto a = hrm::actions(logits, 0);
  EXPECT_EQ(a.action, (std::vector<int64_t>{0, 1, 0}));
  EXPECT_DOUBLE_EQ(a.confidence[2], 1.0 / 3.0);
}

TEST(Decisions, ConfidenceIsTheFloat64Softmax) {
  const hrm::Tensor logits({1, 1, 3}, {0.25f, -1.5f, 3.0f});
  const double e0 = std::exp(0.25 - 3.0), e1 = std::exp(-1.5 - 3.0), e2 = 1.0;
  const auto a = hrm::actions(logits, 0);
  EXPECT_EQ(a.action[0], 2);
  EXPECT_DOUBLE_EQ(a.confidence[0], e2 / ((e0 + e1) + e2));
}

TEST(Decisions, HaltsAtTheFirstStrictWinAndStaysHalted) {
  const auto q = q_of({{{0, 1}, {1, 1}, {2, 1}, {0, 1}}});  // equal at t=1 is no halt; t=2 halts
  EXPECT_EQ(hrm::halting_minutes(q, 390, 10), (std::vector<int64_t>{12}));
  EXPECT_EQ(hrm::halting_minutes(q, 390, 10, {11}), (std::vector<int64_t>{11}));  // sticky: earlier halt stands
  EXPECT_EQ(hrm::halted({12}, 10, 4), (std::vector<uint8_t>{0, 0, 1, 1}));
}

TEST(Decisions, TheCloseAlwaysHalts) {
  const auto never = q_of({{{0, 1}, {0, 1}, {0, 1}}});
  EXPECT_EQ(hrm::halting_minutes(never, 390, 386), (std::vector<int64_t>{hrm::NOT_HALTED}));  // 386..388: not yet
  EXPECT_EQ(hrm::halting_minutes(never, 390, 387), (std::vector<int64_t>{389}));              // 387..389: the close
  EXPECT_EQ(hrm::halting_minutes(never, 3, 0), (std::vector<int64_t>{2}));  // a shorter session's close
  // minutes past a short session's close are padding: a win there does not count, the close does
  const auto late = q_of({{{0, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1}, {2, 1}}});
  EXPECT_EQ(hrm::halting_minutes(late, 5, 0), (std::vector<int64_t>{4}));
}

TEST(Decisions, NonFiniteOutputsAreRefusedWithWhereTheyAre) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  try {
    hrm::actions(hrm::Tensor({2, 2, 3}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, nan, 0}), 40);
    FAIL() << "NaN logits became a decision";
  } catch (const hrm::NonFiniteOutputError& e) {
    EXPECT_STREQ(e.what(), "action_logits: non-finite value nan at instrument 1, minute 41");
    EXPECT_EQ(e.output, "action_logits");
    EXPECT_EQ(e.instrument, 1);
    EXPECT_EQ(e.minute, 41);
  }
  EXPECT_THROW(hrm::quantities(hrm::Tensor({1, 1, 1}, {inf}), 0), hrm::NonFiniteOutputError);
  // a non-finite q is refused even when the instrument halted earlier
  EXPECT_THROW(hrm::halting_minutes(q_of({{{-inf, 0}}}), 390, 5, {3}), hrm::NonFiniteOutputError);
}

TEST(Timeline, JoinsAndReadsMinutesLikeThePythonTimeline) {
  const hrm::Tensor logits({1, 2, 3}, {0, 1, 0, 1, 0, 0});
  const hrm::Tensor quantity({1, 2, 1}, {0.5f, 0.25f});
  const auto a = hrm::make_timeline(logits, quantity, q_of({{{0, 1}, {2, 1}}}), 0, 390, {});
  const auto b = hrm::make_timeline(logits, quantity, q_of({{{0, 1}, {0, 1}}}), 2, 390, a.halt_minute);
  const auto tl = hrm::join_minutes({a, b});
  EXPECT_EQ(tl.minutes, 4);
  EXPECT_EQ(tl.halt_minute, (std::vector<int64_t>{1}));
  EXPECT_EQ(tl.halted, (std::vector<uint8_t>{0, 1, 1, 1}));
  EXPECT_EQ(tl.at(0).halt_minute[0], hrm::NOT_HALTED);  // as of minute 0 the halt had not happened
  EXPECT_EQ(tl.at(3).halt_minute[0], 1);
  EXPECT_STREQ(tl.at(0).action_name(0), "flat");
  EXPECT_THROW(tl.at(4), std::out_of_range);
}

}  // namespace
