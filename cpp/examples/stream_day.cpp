// Open a bundle, stream one day minute by minute, print the minute each instrument halts at.
#include <cstdio>

#include "hrm/runtime.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s BUNDLE\n", argv[0]);
    return 2;
  }
  try {
    hrm::OpenOptions options;
    options.backend = "ort-cpu";
    hrm::Runtime rt = hrm::Runtime::open(argv[1], options);  // fail closed: every check runs here
    const hrm::Config& c = rt.config();

    // Your tokens: the look-back days (B, D, F_day) and each minute (B, 1, F_min), from model_src.features.
    hrm::Tensor days = hrm::Tensor::zeros({1, rt.limits().days, c.n_day_features});
    hrm::Session session = rt.start_day(days);  // H once; γ, β kept for the day
    for (int64_t t = 0; t < rt.session_minutes(); ++t) {
      hrm::Tensor minute = hrm::Tensor::zeros({1, 1, c.n_minute_features});
      hrm::Decision d = session.push(minute, t);  // the decision for minute t
      if (d.halt_minute[0] == t)
        std::printf("minute %lld: %s, confidence %.3f, quantity %.3f (halted)\n", static_cast<long long>(t),
                    d.action_name(0), d.confidence[0], d.quantity[0]);
    }
    return 0;
  } catch (const hrm::Error& e) {  // one line naming the problem, and the fix
    std::fprintf(stderr, "error: %s\nhint: %s\n", e.what(), e.hint().c_str());
    return 1;
  }
}
