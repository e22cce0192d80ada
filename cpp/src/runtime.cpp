// Runtime and Session (hrm/runtime.hpp) over RuntimeImpl: the Python runtime's per-day and streaming
// semantics (hrm_export/runtime/runtime.py, session.py) with the decision rule of decisions.hpp.
#include <algorithm>

#include "hrm/decisions.hpp"
#include "inputs.hpp"
#include "runtime_impl.hpp"

namespace hrm {
namespace detail {

namespace {
DayFilm film_rows(const DayFilm& f, int64_t lo, int64_t hi) {
  return DayFilm{f.h_tokens.rank() ? slice(f.h_tokens, 0, lo, hi) : Tensor{}, slice(f.gamma, 0, lo, hi),
                 slice(f.beta, 0, lo, hi)};
}
}  // namespace

RuntimeImpl::RuntimeImpl(Opened o) : opened(std::move(o)) {
  cfg = opened.manifest->config;
  limits = opened.limits;
  if (opened.manifest->days_range) days_range = &*opened.manifest->days_range;  // the manifest outlives *this
  if (opened.manifest->minutes_range) minutes_range = &*opened.manifest->minutes_range;
  backend_name = opened.backend->name();
  precision = opened.artifacts.at("l_step").precision;
  reason = opened.reason;
  signature = opened.signature;
  auto call = [&](const char* module) {
    return ModuleCall(opened.artifacts.at(module), *opened.backend, cfg, opened.profiles, pool);
  };
  h_call = std::make_unique<ModuleCall>(call("h_module"));
  l_call = std::make_unique<ModuleCall>(call("l_module"));
  step_call = std::make_unique<LStepCall>(call("l_step"));
}

DayFilm RuntimeImpl::h_chunk(const Tensor& days) const {
  auto out = h_call->run({{"days", &days}});
  return DayFilm{std::move(out.at("h_tokens")), std::move(out.at("film_gamma")), std::move(out.at("film_beta"))};
}

DayFilm RuntimeImpl::h(const Tensor& days) const {
  check_tokens(days, "days", cfg.n_day_features, -1, days_range);
  check_days(days, limits);
  const int64_t B = days.shape[0];
  if (B <= limits.batch) return h_chunk(days);
  std::vector<Tensor> tokens, gammas, betas;
  for (int64_t lo = 0; lo < B; lo += limits.batch) {
    DayFilm f = h_chunk(slice(days, 0, lo, std::min(B, lo + limits.batch)));
    tokens.push_back(std::move(f.h_tokens));
    gammas.push_back(std::move(f.gamma));
    betas.push_back(std::move(f.beta));
  }
  return DayFilm{concat(std::move(tokens), 0), concat(std::move(gammas), 0), concat(std::move(betas), 0)};
}

StepHeads RuntimeImpl::l_step(const Tensor& x, const DayFilm& film, const Tensor& past_kv) const {
  const int64_t B = x.shape[0], T = x.shape[1];
  std::vector<Tensor> logits, quantity, q, kvs;
  for (int64_t lo = 0; lo < B; lo += limits.batch) {
    const int64_t hi = std::min(B, lo + limits.batch);
    const bool whole = lo == 0 && hi == B;  // the usual case: no copies of the inputs or the K/V cache
    DayFilm film_part;
    Tensor x_part, kv_part, present;
    if (!whole) {
      film_part = film_rows(film, lo, hi);
      x_part = slice(x, 0, lo, hi);
      kv_part = slice(past_kv, 2, lo, hi);
    }
    const DayFilm& f = whole ? film : film_part;
    const Tensor& xb = whole ? x : x_part;
    const Tensor* kv = whole ? &past_kv : &kv_part;
    std::vector<Tensor> l, qt, qv;
    for (int64_t t0 = 0; t0 < T; t0 += limits.new_minutes) {  // a long push: several l_step calls
      const int64_t t1 = std::min(T, t0 + limits.new_minutes);
      const Tensor piece = t0 == 0 && t1 == T ? Tensor{} : slice(xb, 1, t0, t1);
      StepOut out = (*step_call)(piece.rank() ? piece : xb, f, *kv);
      present = std::move(out.present_kv);
      kv = &present;
      l.push_back(std::move(out.action_logits));
      qt.push_back(std::move(out.quantity));
      qv.push_back(std::move(out.q_values));
    }
    logits.push_back(concat(std::move(l), 1));
    quantity.push_back(concat(std::move(qt), 1));
    q.push_back(concat(std::move(qv), 1));
    kvs.push_back(std::move(present));
  }
  return StepHeads{concat(std::move(logits), 0), concat(std::move(quantity), 0), concat(std::move(q), 0),
                   concat(std::move(kvs), 2)};
}

Timeline RuntimeImpl::run_day(const Tensor& days, const Tensor& minutes, int64_t session_minutes) const {
  check_tokens(days, "days", cfg.n_day_features, -1, days_range);
  check_tokens(minutes, "minutes", cfg.n_minute_features, days.shape[0], minutes_range);
  check_days(days, limits);
  check_session_minutes(minutes, limits);
  const int64_t T = minutes.shape[1];
  if (session_minutes < 0) session_minutes = T;
  if (session_minutes < T || session_minutes > cfg.max_minutes)
    throw InputError("run_day: session_minutes " + std::to_string(session_minutes) + " is not between the " +
                         std::to_string(T) + " minutes given and the model's max_minutes " +
                         std::to_string(cfg.max_minutes),
                     "pass today's number of session minutes (at least the minutes given)");
  const int64_t B = days.shape[0];
  std::vector<Timeline> parts;
  for (int64_t lo = 0; lo < B; lo += limits.batch) {
    const int64_t hi = std::min(B, lo + limits.batch);
    const bool whole = lo == 0 && hi == B;
    const DayFilm film = h_chunk(whole ? days : slice(days, 0, lo, hi));
    const Tensor m = whole ? Tensor{} : slice(minutes, 0, lo, hi);
    auto out = l_call->run({{"minutes", whole ? &minutes : &m}, {"film_gamma", &film.gamma},
                            {"film_beta", &film.beta}, {"h_tokens", &film.h_tokens}});
    parts.push_back(make_timeline(out.at("action_logits"), out.at("quantity"), out.at("q_values"), 0, session_minutes, {}));
  }
  return join_batch(parts);
}

Tensor RuntimeImpl::empty_kv(int64_t batch) const {
  return Tensor::zeros({cfg.l_layers, 2, batch, cfg.l_heads, 0, cfg.l_head_dim()});  // (L, 2, B, H, 0, hd)
}

void RuntimeImpl::warmup() const {
  // Every module once on one-step zeros: sessions load now rather than on the first live minute, and an
  // artifact that cannot run fails at open.
  const DayFilm film = h_chunk(Tensor::zeros({1, 1, cfg.n_day_features}));
  const Tensor minute = Tensor::zeros({1, 1, cfg.n_minute_features});
  l_call->run({{"minutes", &minute}, {"film_gamma", &film.gamma}, {"film_beta", &film.beta}, {"h_tokens", &film.h_tokens}});
  Tensor kv = empty_kv(1);
  for (int i = 0; i < 2; ++i) kv = (*step_call)(minute, film, kv).present_kv;  // P = 0 and P = 1
}

}  // namespace detail

// -- Runtime ------------------------------------------------------------------------------------------------

Runtime Runtime::open(const std::string& bundle_dir, const OpenOptions& options) {
  auto impl = std::make_shared<detail::RuntimeImpl>(open_bundle(bundle_dir, options));
  if (options.warmup) impl->warmup();
  return Runtime(std::move(impl));
}

Session Runtime::session() const { return Session(impl_); }
Session Runtime::start_day(const Tensor& days, int64_t session_minutes) const {
  Session s = session();
  s.start_day(days, session_minutes);
  return s;
}
Timeline Runtime::run_day(const Tensor& days, const Tensor& minutes, int64_t session_minutes) const {
  return impl_->run_day(days, minutes, session_minutes);
}
DayFilm Runtime::h(const Tensor& days) const { return impl_->h(days); }
const Config& Runtime::config() const { return impl_->cfg; }
const Limits& Runtime::limits() const { return impl_->limits; }
int64_t Runtime::session_minutes() const { return impl_->cfg.max_minutes; }
const std::string& Runtime::backend_name() const { return impl_->backend_name; }
const std::string& Runtime::precision() const { return impl_->precision; }
const std::string& Runtime::reason() const { return impl_->reason; }
const std::string& Runtime::signature() const { return impl_->signature; }
std::string Runtime::describe() const { return impl_->opened.backend->describe(); }

// -- Session ------------------------------------------------------------------------------------------------

Session::Session(const Session& other) : rt_(other.rt_) {
  std::lock_guard<std::mutex> lock(other.mutex_);
  film_ = other.film_;
  kv_ = other.kv_;
  halt_minute_ = other.halt_minute_;
  session_minutes_ = other.session_minutes_;
}

Session& Session::operator=(const Session& other) {
  if (this == &other) return *this;
  std::scoped_lock lock(mutex_, other.mutex_);
  rt_ = other.rt_;
  film_ = other.film_;
  kv_ = other.kv_;
  halt_minute_ = other.halt_minute_;
  session_minutes_ = other.session_minutes_;
  return *this;
}

Session& Session::start_day(const Tensor& days, int64_t session_minutes) {
  const int64_t full = rt_->limits.total_minutes;
  if (session_minutes < 0) session_minutes = full;
  if (session_minutes < 1 || session_minutes > full)
    throw InputError("start_day: session_minutes " + std::to_string(session_minutes) + " is not between 1 and " +
                         std::to_string(full),
                     "pass today's number of session minutes (at most " + std::to_string(full) + ": profile '" +
                         rt_->limits.profile + "', model max_minutes=" + std::to_string(rt_->cfg.max_minutes) + ")");
  auto film = std::make_shared<const DayFilm>(rt_->h(days));  // checked and chunked; may throw: untouched so far
  auto kv = rt_->pool->share(rt_->empty_kv(film->gamma.shape[0]));
  std::lock_guard<std::mutex> lock(mutex_);
  halt_minute_.assign(static_cast<size_t>(film->gamma.shape[0]), NOT_HALTED);
  film_ = std::move(film);
  kv_ = std::move(kv);
  session_minutes_ = session_minutes;
  return *this;
}

Decision Session::push(const Tensor& minutes, int64_t start_minute) {
  return push_timeline(minutes, start_minute).last();
}

Timeline Session::push_timeline(const Tensor& minutes, int64_t start_minute) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!film_)
    throw NotStartedError("push before start_day: the session has no day conditioning yet",
                          "call session.start_day(days) once per day before pushing minutes");
  const int64_t n = kv_->shape[4];
  check_tokens(minutes, "minutes", rt_->cfg.n_minute_features, film_->gamma.shape[0], rt_->minutes_range, n);
  const int64_t t_new = minutes.shape[1];
  if (start_minute != n) {
    const std::string what = start_minute < n ? "repeats minutes already pushed"
                                              : "skips " + std::to_string(start_minute - n) + " minute(s)";
    throw SequenceError("push at start_minute " + std::to_string(start_minute) + " " + what + ": the next minute is " +
                            std::to_string(n),
                        "push the bars in order starting at minute " + std::to_string(n) + " (start_day resets to 0)");
  }
  const int64_t total = session_minutes_;
  if (n >= total)
    throw SessionFullError("session is full: " + std::to_string(n) + " of " + std::to_string(total) +
                               " minutes pushed today",
                           "call start_day(days) for the next trading day");
  if (n + t_new > total)
    throw SessionFullError("push of " + std::to_string(t_new) + " minute(s) at minute " + std::to_string(n) +
                               " passes the session's " + std::to_string(total) + " minutes",
                           "push at most " + std::to_string(total - n) + " more");
  detail::StepHeads heads = rt_->l_step(minutes, *film_, *kv_);  // may throw: state untouched so far
  Timeline line = make_timeline(heads.action_logits, heads.quantity, heads.q_values, n, session_minutes_,
                                halt_minute_);  // refuses non-finite outputs before anything is committed
  kv_ = rt_->pool->share(std::move(heads.present_kv));  // the old cache's storage returns to the pool
  halt_minute_ = line.halt_minute;
  return line;
}

bool Session::started() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return film_ != nullptr;
}

int64_t Session::batch() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return film_ ? film_->gamma.shape[0] : 0;
}

int64_t Session::session_minutes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return session_minutes_;
}

int64_t Session::n_minutes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return kv_ ? kv_->shape[4] : 0;
}

std::vector<int64_t> Session::halt_minute() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return halt_minute_;
}

}  // namespace hrm
