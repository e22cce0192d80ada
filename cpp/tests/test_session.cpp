// Sessions and run_day on a real bundle: every bad input refused with one line before anything runs, a
// refused push leaves the session exactly as it was, non-finite outputs never become decisions, and calls
// larger than the profile are chunked.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>

#include "helpers.hpp"
#include "hrm/decisions.hpp"
#include "hrm/runtime.hpp"
#include "npy.hpp"

namespace {

struct Day {
  hrm::Tensor days = hrm::read_npy(fixtures() / "days.npy");        // (4, 8, 8)
  hrm::Tensor minutes = hrm::read_npy(fixtures() / "minutes.npy");  // (4, 390, 11)
  hrm::Tensor minute(int64_t t) const { return hrm::slice(minutes, 1, t, t + 1); }
};

hrm::Runtime open(const std::string& bundle = "bundle") {
  hrm::OpenOptions o;
  o.backend = "ort-cpu";
  return hrm::Runtime::open((fixtures() / bundle).string(), o);
}

void expect_same(const hrm::Timeline& a, const hrm::Timeline& b) {
  EXPECT_EQ(a.first_minute, b.first_minute);
  EXPECT_EQ(a.action_logits, b.action_logits);
  EXPECT_EQ(a.q_halt, b.q_halt);
  EXPECT_EQ(a.quantity, b.quantity);
  EXPECT_EQ(a.action, b.action);
  EXPECT_EQ(a.halted, b.halted);
  EXPECT_EQ(a.halt_minute, b.halt_minute);
}

TEST(Session, RefusesBadPushesAndStaysWhereItWas) {
  const Day d;
  const hrm::Runtime rt = open();
  hrm::Session s = rt.session();
  EXPECT_REFUSED(s.push(d.minute(0), 0), hrm::NotStartedError, "push before start_day");
  s.start_day(d.days);
  hrm::Session clean = rt.start_day(d.days);
  expect_same(s.push_timeline(d.minute(0), 0), clean.push_timeline(d.minute(0), 0));

  const float nan = std::numeric_limits<float>::quiet_NaN();
  hrm::Tensor bad = d.minute(1);
  bad.data[2 * 11 + 5] = nan;
  EXPECT_REFUSED(s.push(bad, 1), hrm::InputError, "minutes: non-finite value nan at instrument 2, step 0, feature 5");
  bad.data[2 * 11 + 5] = -std::numeric_limits<float>::infinity();
  EXPECT_REFUSED(s.push(bad, 1), hrm::InputError, "non-finite value -inf");
  EXPECT_REFUSED(s.push(hrm::Tensor({4, 11}, std::vector<float>(44)), 1), hrm::InputError,
                 "minutes: shape (4, 11) has no batch axis");
  EXPECT_REFUSED(s.push(hrm::Tensor::zeros({1, 4, 1, 11}), 1), hrm::InputError, "is not (batch, steps, 11)");
  EXPECT_REFUSED(s.push(hrm::Tensor::zeros({4, 1, 10}), 1), hrm::InputError, "10 features per step, the model takes 11");
  EXPECT_REFUSED(s.push(hrm::Tensor::zeros({3, 1, 11}), 1), hrm::InputError, "batch 3 but this session holds 4");
  EXPECT_REFUSED(s.push(hrm::Tensor::zeros({4, 0, 11}), 1), hrm::InputError, "is empty");
  hrm::Tensor lying;  // a hand-built tensor whose data does not fill its shape
  lying.shape = {4, 1, 11};
  lying.data.resize(10);
  EXPECT_REFUSED(s.push(lying, 1), hrm::InputError, "needs 44 values, the tensor holds 10");
  EXPECT_REFUSED(s.push(d.minute(2), 2), hrm::SequenceError, "push at start_minute 2 skips 1 minute(s): the next minute is 1");
  EXPECT_REFUSED(s.push(d.minute(0), 0), hrm::SequenceError, "repeats minutes already pushed");
  EXPECT_REFUSED(s.push(hrm::Tensor::zeros({4, 390, 11}), 1), hrm::SessionFullError,
                 "push of 390 minute(s) at minute 1 passes the session's 390 minutes");
  EXPECT_EQ(s.n_minutes(), 1);

  // after all that, the session goes on exactly as one that never saw a bad push
  for (int64_t t = 1; t < 12; ++t) expect_same(s.push_timeline(d.minute(t), t), clean.push_timeline(d.minute(t), t));
  EXPECT_EQ(s.halt_minute(), clean.halt_minute());
}

TEST(Session, IsFullAfterTheLastMinute) {
  const Day d;
  hrm::Session s = open().start_day(d.days);
  s.push(d.minutes, 0);  // the whole session in one push
  EXPECT_EQ(s.n_minutes(), 390);
  EXPECT_REFUSED(s.push(d.minute(0), 390), hrm::SessionFullError, "session is full: 390 of 390 minutes pushed today");
  s.start_day(d.days);  // a new day starts over
  EXPECT_EQ(s.n_minutes(), 0);
  EXPECT_EQ(s.halt_minute(), std::vector<int64_t>(4, hrm::NOT_HALTED));
}

TEST(Session, ForksAreIndependentAndShareNoMutableState) {
  const Day d;
  const hrm::Runtime rt = open();
  hrm::Session base = rt.start_day(d.days);
  base.push(hrm::slice(d.minutes, 1, 0, 200), 0);
  hrm::Session fork = base;  // shares the cache until one of them pushes
  std::vector<hrm::Timeline> from_fork, from_base;
  for (int64_t t = 200; t < 210; ++t) {
    from_fork.push_back(fork.push_timeline(d.minute(t), t));  // the pool recycles the caches each replaces
    hrm::Session scratch = fork;  // forks made and dropped in between must not disturb either
    scratch.push(d.minute(t + 1), t + 1);
  }
  for (int64_t t = 200; t < 210; ++t) from_base.push_back(base.push_timeline(d.minute(t), t));
  for (size_t i = 0; i < from_base.size(); ++i) expect_same(from_fork[i], from_base[i]);
  EXPECT_EQ(base.n_minutes(), 210);
}

TEST(Runtime, RefusesDaysAndSessionsOutsideTheProfile) {
  const Day d;
  const hrm::Runtime rt = open();
  EXPECT_REFUSED(rt.start_day(hrm::Tensor::zeros({1, 17, 8})), hrm::ProfileError,
                 "days: 17 look-back days, profile 'small' admits at most 16");
  EXPECT_REFUSED(rt.run_day(d.days, hrm::Tensor::zeros({4, 391, 11})), hrm::ProfileError,
                 "minutes: 391 minutes, profile 'small' admits at most 390");
  EXPECT_REFUSED(rt.run_day(d.days, hrm::Tensor::zeros({2, 390, 11})), hrm::InputError, "batch 2 but this session holds 4");
  EXPECT_REFUSED(rt.start_day(hrm::Tensor::zeros({1, 8, 9})), hrm::InputError, "9 features per step, the model takes 8");
}

TEST(Runtime, NonFiniteOutputsNeverBecomeDecisions) {
  const Day d;
  const hrm::Runtime rt = open("nonfinite");  // its Q-head bias is NaN
  hrm::Session s = rt.start_day(d.days);
  try {
    s.push(d.minute(0), 0);
    FAIL() << "a NaN Q-value became a decision";
  } catch (const hrm::NonFiniteOutputError& e) {
    EXPECT_STREQ(e.what(), "q_values: non-finite value nan at instrument 0, minute 0");
  }
  EXPECT_EQ(s.n_minutes(), 0);  // nothing committed
  EXPECT_REFUSED(rt.run_day(d.days, d.minutes), hrm::NonFiniteOutputError, "q_values: non-finite value nan");
}

TEST(Runtime, ChunksBatchesLargerThanTheProfile) {
  const Day d;
  const hrm::Runtime rt = open();
  ASSERT_EQ(rt.limits().batch, 4);
  std::vector<hrm::Tensor> rows_d, rows_m;
  for (int64_t b : {0, 1, 2, 3, 0, 1}) {  // 6 instruments: a chunk of 4 and one of 2
    rows_d.push_back(hrm::slice(d.days, 0, b, b + 1));
    rows_m.push_back(hrm::slice(d.minutes, 0, b, b + 1));
  }
  const hrm::Tensor days6 = hrm::concat(rows_d, 0), minutes6 = hrm::concat(rows_m, 0);
  const hrm::Timeline six = rt.run_day(days6, minutes6), four = rt.run_day(d.days, d.minutes);
  EXPECT_EQ(six.batch, 6);
  for (int64_t b = 0; b < 6; ++b) {
    const int64_t src = b % 4, T = 390;
    for (int64_t t = 0; t < T; ++t)
      EXPECT_NEAR(six.q_halt[static_cast<size_t>(b * T + t)], four.q_halt[static_cast<size_t>(src * T + t)], 1e-5);
    EXPECT_EQ(six.halt_minute[static_cast<size_t>(b)], four.halt_minute[static_cast<size_t>(src)]);
  }
  hrm::Session s = rt.start_day(days6);
  const hrm::Timeline streamed = s.push_timeline(hrm::slice(minutes6, 1, 0, 20), 0);
  EXPECT_EQ(streamed.batch, 6);
  EXPECT_EQ(s.n_minutes(), 20);
}

TEST(Runtime, SessionsRunInParallelThreads) {
  const Day d;
  const hrm::Runtime rt = open();
  auto day = [&](hrm::Timeline& out) {
    hrm::Session s = rt.start_day(d.days);
    std::vector<hrm::Timeline> parts;
    for (int64_t t = 0; t < 30; ++t) parts.push_back(s.push_timeline(d.minute(t), t));
    out = hrm::join_minutes(parts);
  };
  hrm::Timeline alone, a, b;
  day(alone);
  std::thread ta(day, std::ref(a)), tb(day, std::ref(b));
  ta.join();
  tb.join();
  expect_same(a, alone);
  expect_same(b, alone);
}

}  // namespace
