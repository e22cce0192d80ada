// The C++ runtime: what a trading system links. Mirrors the Python runtime (hrm_export/runtime/):
//
//   hrm::Runtime rt = hrm::Runtime::open("engines/default");  // fail closed: every check before inference
//   hrm::Session s = rt.start_day(days);                       // days (B, D, F_day): H once, γ/β kept
//   hrm::Decision d = s.push(minute, 0);                       // minute (B, 1, F_min) → decision for minute 0
//   hrm::Timeline tl = rt.run_day(days, minutes);              // the whole session in one pass
//
// A Runtime is a cheap handle (copies share one opened bundle) and may be used from many threads; each
// Session holds one day's streaming state for a group of instruments and serialises its own pushes.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hrm/config.hpp"
#include "hrm/errors.hpp"
#include "hrm/tensor.hpp"
#include "hrm/timeline.hpp"

namespace hrm {

struct OpenOptions {
  std::string backend = "auto";  // auto (tensorrt > ort-cuda > ort-cpu), tensorrt, ort-cuda, ort-cpu
  std::string precision = "fp32";
  std::string profile;           // empty: the first profile every chosen artifact admits
  int intra_op_threads = 0;      // ONNX Runtime intra-op threads; 0: one per physical core
  bool warmup = true;            // run every module once at open, so a broken artifact fails there
  std::string trust;             // a PEM public key file: the bundle must be signed with it (model.sig, checked
                                 // before anything else is read); empty: no signature required, none checked
};

// What H computes once per day: h_tokens (B, D, Ch), γ (B, Cl), β (B, Cl).
struct DayFilm {
  Tensor h_tokens;
  Tensor gamma;
  Tensor beta;
};

namespace detail {
struct RuntimeImpl;
}
class Session;

class Runtime {
 public:
  static Runtime open(const std::string& bundle_dir, const OpenOptions& options = {});

  Session session() const;                        // an empty session: start_day before pushing
  // days (B, D, F_day); session_minutes: today's length (a half day is shorter), default the profile's whole
  // session. An instrument that has not halted halts at minute session_minutes - 1 (the close).
  Session start_day(const Tensor& days, int64_t session_minutes = -1) const;
  // (B, D, F_day), (B, T, F_min); session_minutes default T (pass it when the minutes stop before the close)
  Timeline run_day(const Tensor& days, const Tensor& minutes, int64_t session_minutes = -1) const;
  DayFilm h(const Tensor& days) const;            // the H-module over days, chunked by the profile's batch

  const Config& config() const;
  const Limits& limits() const;
  int64_t session_minutes() const;  // the longest session (max_minutes): minute session_minutes - 1 is its close
  const std::string& backend_name() const;
  const std::string& precision() const;
  const std::string& reason() const;  // why this backend ("picked ort-cpu (passed over ...)")
  // "signed with the trusted key KEY", "signed, not checked (pass --trust KEY.pub)" or "unsigned"
  const std::string& signature() const;
  std::string describe() const;

 private:
  explicit Runtime(std::shared_ptr<const detail::RuntimeImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const detail::RuntimeImpl> impl_;
  friend class Session;
};

class Session {
 public:
  Session(const Session& other);  // a copy of the day's state (a fork of the stream)
  Session& operator=(const Session& other);

  // H once on days (B, D, F_day); resets minutes and halts; session_minutes as Runtime::start_day
  Session& start_day(const Tensor& days, int64_t session_minutes = -1);
  // New minute tokens (B, T_new, F_min) whose first is session minute start_minute (== n_minutes()) →
  // the decision at the latest minute. Everything is checked before anything runs, and the state changes
  // only after the backend returned: a refused or failed push leaves the session as it was.
  Decision push(const Tensor& minutes, int64_t start_minute);
  Timeline push_timeline(const Tensor& minutes, int64_t start_minute);  // decisions of every new minute

  bool started() const;
  int64_t batch() const;
  int64_t n_minutes() const;                // minutes pushed so far today: the next push starts here
  int64_t session_minutes() const;          // today's session length (start_day)
  std::vector<int64_t> halt_minute() const;  // (B,) first halting minute today, NOT_HALTED if none yet

 private:
  explicit Session(std::shared_ptr<const detail::RuntimeImpl> rt) : rt_(std::move(rt)) {}
  friend class Runtime;

  std::shared_ptr<const detail::RuntimeImpl> rt_;
  mutable std::mutex mutex_;
  // The day's state is immutable and shared: a push replaces the K/V cache rather than editing it, so a
  // copy of a session (a fork) costs no copy of the cache, as in the Python runtime.
  std::shared_ptr<const DayFilm> film_;
  std::shared_ptr<const Tensor> kv_;  // (L, 2, B, H, P, hd)
  std::vector<int64_t> halt_minute_;
  int64_t session_minutes_ = 0;  // today's length: its close is minute session_minutes_ - 1
};

}  // namespace hrm
