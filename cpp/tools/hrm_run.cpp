// hrm_run: replay one day through the C++ runtime, like `hrm-export run`.
//
//   hrm_run BUNDLE --days days.npy --minutes minutes.npy [--backend B] [--precision P] [--profile P]
//           [--step N] [--full] [--json] [--bench [--seconds S]] [--threads N] [--trust KEY.pub]
//
// With --json: one JSON line per minute and instrument with the fields and values of `hrm-export run
// --json`, then a summary line. --bench times push (at minute 0 and at the session's last minute) and
// run_day instead, as JSON cells with hrm-export bench's field names. Bad input: one `error:` line and a
// `hint:` line on stderr, exit 1.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "hrm/decisions.hpp"
#include "hrm/runtime.hpp"
#include "inputs.hpp"
#include "npy.hpp"
#include "pyjson.hpp"
#include "timing.hpp"

namespace {

using hrm::tools::Timing;

const char* USAGE =
    "usage: hrm_run BUNDLE --days F.npy --minutes F.npy [--backend auto|tensorrt|ort-cuda|ort-cpu]\n"
    "               [--precision fp32|int8-cpu|...] [--profile NAME] [--step N] [--full] [--json]\n"
    "               [--bench [--seconds S]] [--threads N] [--trust KEY.pub] [--session-minutes N]\n"
    "  --trust KEY.pub      refuse the bundle unless it is signed with this key (hrm-export sign): checked first\n"
    "  --session-minutes N  the session's length when the minutes stop before the close (default: the minutes\n"
    "                       given); an instrument that has not halted halts at minute N - 1\n";

const char* HELP = "hrm_run BUNDLE --days F.npy --minutes F.npy [options]; hrm_run --help lists them";

struct Args {
  std::string bundle, days, minutes, profile;
  hrm::OpenOptions open;
  int64_t step = 1;
  int64_t session_minutes = -1;  // -1: the minutes given, as hrm-export run
  bool full = false, json = false, bench = false;
  double seconds = 2.0;
};

int64_t positive(const std::string& flag, const std::string& v) {
  try {
    size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used == v.size() && n >= 1) return n;
  } catch (const std::exception&) {
  }
  throw hrm::UsageError(flag + " " + v + ": expected a positive integer", "e.g. " + flag + " 1");
}

double seconds(const std::string& flag, const std::string& v) {
  try {
    size_t used = 0;
    const double x = std::stod(v, &used);
    if (used == v.size() && x > 0 && x <= 3600) return x;
  } catch (const std::exception&) {
  }
  throw hrm::UsageError(flag + " " + v + ": expected seconds between 0 and 3600", "e.g. " + flag + " 2");
}

Args parse(int argc, char** argv) {
  Args a;
  std::vector<std::string> rest(argv + 1, argv + argc);
  auto value = [&](size_t& i) -> std::string {
    if (i + 1 >= rest.size()) throw hrm::UsageError(rest[i] + " needs a value", HELP);
    return rest[++i];
  };
  for (size_t i = 0; i < rest.size(); ++i) {
    const std::string& f = rest[i];
    if (f == "--days") a.days = value(i);
    else if (f == "--minutes") a.minutes = value(i);
    else if (f == "--backend" || f == "-b") a.open.backend = value(i);
    else if (f == "--precision") a.open.precision = value(i);
    else if (f == "--profile" || f == "-p") a.open.profile = value(i);
    else if (f == "--step") a.step = positive(f, value(i));
    else if (f == "--session-minutes") a.session_minutes = positive(f, value(i));
    else if (f == "--trust") {
      a.open.trust = value(i);
      if (a.open.trust.empty())  // an empty key must not quietly mean "check nothing"
        throw hrm::UsageError("--trust needs a public key file, got ''", "e.g. --trust key.pub (docs/bundles.md)");
    }
    else if (f == "--threads") a.open.intra_op_threads = static_cast<int>(positive(f, value(i)));
    else if (f == "--seconds") a.seconds = seconds(f, value(i));
    else if (f == "--full") a.full = true;
    else if (f == "--json") a.json = true;
    else if (f == "--bench") a.bench = true;
    else if (f == "--help" || f == "-h") throw hrm::UsageError("help", USAGE);
    else if (!f.empty() && f[0] == '-') throw hrm::UsageError("unknown option " + f, HELP);
    else if (a.bundle.empty()) a.bundle = f;
    else throw hrm::UsageError("unexpected argument " + f, HELP);
  }
  if (a.bundle.empty() || a.days.empty() || a.minutes.empty())
    throw hrm::UsageError("BUNDLE, --days and --minutes are required", HELP);
  return a;
}

// Token files as hrm-export run loads them: (N, F) gets the instrument axis, (B, N, F) stays.
hrm::Tensor load_tokens(const std::string& path) {
  hrm::Tensor t = hrm::read_npy(path);
  if (t.rank() == 2) t.shape.insert(t.shape.begin(), 1);
  return t;
}

// The session's length: --session-minutes, else the minutes given (T), as hrm-export run's ReplayDay.
int64_t session_length(const Args& a, int64_t T) { return a.session_minutes > 0 ? a.session_minutes : T; }

// str(Path(p)) in Python: "./x/" -> "x"
std::string python_path_str(const std::string& p) {
  std::string s = std::filesystem::path(p).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s.empty() ? "." : s;
}

hrm::Timeline replay(const hrm::Runtime& rt, const hrm::Tensor& days, const hrm::Tensor& minutes, const Args& a,
                     std::vector<double>& latency_ms) {
  auto timed = [&](auto&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    auto out = fn();
    latency_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    return out;
  };
  const int64_t T = minutes.rank() == 3 ? minutes.shape[1] : 0;
  const int64_t length = session_length(a, std::max<int64_t>(T, 1));
  if (a.full) return timed([&] { return rt.run_day(days, minutes, length); });
  hrm::Session session = rt.start_day(days, length);
  std::vector<hrm::Timeline> parts;
  if (T < 1) return session.push_timeline(minutes, 0);  // refused with the runtime's own message
  for (int64_t t = 0; t < T; t += a.step) {
    const hrm::Tensor chunk = hrm::slice(minutes, 1, t, std::min(T, t + a.step));
    parts.push_back(timed([&] { return session.push_timeline(chunk, t); }));
  }
  return hrm::join_minutes(parts);
}

std::string summary_line(const Args& a, const hrm::Runtime& rt, const hrm::Timeline& tl, std::vector<double> ms) {
  std::string halts = "[";
  for (size_t b = 0; b < tl.halt_minute.size(); ++b) halts += (b ? ", " : "") + std::to_string(tl.halt_minute[b]);
  const std::string stage = a.full ? "run_day" : "push";
  const std::string latency = hrm::py_json_object({{"p50_ms", hrm::py_round(hrm::tools::percentile(ms, 50), 4)},
                                                   {"p99_ms", hrm::py_round(hrm::tools::percentile(ms, 99), 4)},
                                                   {"max_ms", hrm::py_round(*std::max_element(ms.begin(), ms.end()), 4)}});
  const std::string summary = hrm::py_json_object({{"bundle", hrm::py_json_string(python_path_str(a.bundle))},
                                                   {"backend", hrm::py_json_string(rt.backend_name())},
                                                   {"precision", hrm::py_json_string(rt.precision())},
                                                   {"why", hrm::py_json_string(rt.reason())},
                                                   // token files: the day is named by the minute file, and the
                                                   // minutes given are the whole session unless
                                                   // --session-minutes says more (as hrm-export run)
                                                   {"date", hrm::py_json_string(
                                                                std::filesystem::path(a.minutes).stem().string())},
                                                   {"session_minutes", std::to_string(session_length(a, tl.minutes))},
                                                   {"minutes", std::to_string(tl.minutes)},
                                                   {"instruments", std::to_string(tl.batch)},
                                                   {"mode", hrm::py_json_string(a.full ? "full" : "stream")},
                                                   {"halt_minute", halts + "]"},
                                                   {stage + "_ms", latency}});
  return hrm::py_json_object({{"summary", summary}});
}

void print_table(const hrm::Timeline& tl) {
  std::printf("%6s %10s %-6s %10s %10s %9s %10s %s\n", "minute", "instrument", "action", "confidence", "quantity",
              "q_halt", "q_continue", "halted");
  for (int64_t i = 0; i < tl.minutes; ++i)
    for (int64_t b = 0; b < tl.batch; ++b) {
      const size_t k = static_cast<size_t>(b * tl.minutes + i);
      std::printf("%6lld %10lld %-6s %10.3f %10.3f %+9.3f %+10.3f %s\n", static_cast<long long>(tl.first_minute + i),
                  static_cast<long long>(b), hrm::ACTIONS.at(static_cast<size_t>(tl.action[k])), tl.confidence[k], tl.quantity[k],
                  tl.q_halt[k], tl.q_continue[k], tl.halted[k] ? "HALT" : "");
    }
}

// Cells: push at minute 0 and at the session's last minute (from a fork of a session streamed up to it,
// made outside the clock), and run_day over the whole input.
void bench(const Args& a, const hrm::Runtime& rt, const hrm::Tensor& days, const hrm::Tensor& minutes) {
  const int64_t T = minutes.shape[1], B = days.shape[0];
  const std::string device = rt.backend_name() == "ort-cpu" ? "cpu" : "cuda";
  const std::string device_class =
      device == "cpu" ? "cpu-" + std::to_string(std::thread::hardware_concurrency()) + "core" : "gpu";
  auto cell = [&](const std::string& module, int64_t seq, const char* axis, const Timing& t) {
    return hrm::py_json_object({{"backend", hrm::py_json_string(rt.backend_name())},
                                {"precision", hrm::py_json_string(rt.precision())},
                                {"device", hrm::py_json_string(device)},
                                {"device_class", hrm::py_json_string(device_class)},
                                {"module", hrm::py_json_string(module)},
                                {"batch", std::to_string(B)},
                                {"seq", std::to_string(seq)},
                                {"seq_axis", hrm::py_json_string(axis)},
                                {"timing", hrm::tools::timing_json(t)}});
  };
  std::vector<std::string> cells;
  hrm::Session base = rt.start_day(days);
  for (int64_t at : {int64_t{0}, std::min(T, rt.limits().total_minutes) - 1}) {
    if (at > base.n_minutes()) base.push_timeline(hrm::slice(minutes, 1, base.n_minutes(), at), base.n_minutes());
    const hrm::Tensor one = hrm::slice(minutes, 1, at, at + 1);
    std::unique_ptr<hrm::Session> fork;
    const Timing t = hrm::tools::time_call([&] { fork = std::make_unique<hrm::Session>(base); },
                                           [&] { fork->push(one, at); }, a.seconds);
    cells.push_back(cell("push", at, "past_minutes", t));
  }
  const Timing t = hrm::tools::time_call(nullptr, [&] { rt.run_day(days, minutes); }, a.seconds);
  cells.push_back(cell("run_day", T, "minutes", t));
  std::string list = "[";
  for (size_t i = 0; i < cells.size(); ++i) list += (i ? ", " : "") + cells[i];
  std::cout << hrm::py_json_object({{"bundle", hrm::py_json_string(python_path_str(a.bundle))},
                                    {"backend", hrm::py_json_string(rt.backend_name())},
                                    {"precision", hrm::py_json_string(rt.precision())},
                                    {"cells", list + "]"}})
            << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    hrm::Runtime rt = hrm::Runtime::open(a.bundle, a.open);
    const hrm::Tensor days = load_tokens(a.days), minutes = load_tokens(a.minutes);
    // the whole day checked before the first push, so a bad minute is named by its place in the file
    hrm::check_tokens(days, "days", rt.config().n_day_features);
    hrm::check_tokens(minutes, "minutes", rt.config().n_minute_features, days.shape[0]);
    std::cerr << "run " << a.bundle << " on " << rt.describe() << " (" << rt.reason() << "), profile '"
              << rt.limits().profile << "', " << rt.signature() << "\n";
    if (a.bench) {
      bench(a, rt, days, minutes);
      return 0;
    }
    std::vector<double> latency_ms;
    const hrm::Timeline tl = replay(rt, days, minutes, a, latency_ms);
    if (a.json) {
      std::string out;
      for (int64_t i = 0; i < tl.minutes; ++i)
        for (int64_t b = 0; b < tl.batch; ++b) out += hrm::timeline_row(tl, i, b) + "\n";
      std::cout << out << summary_line(a, rt, tl, latency_ms) << "\n";
    } else {
      print_table(tl);
      std::string halts;
      for (size_t b = 0; b < tl.halt_minute.size(); ++b) halts += (b ? ", " : "") + std::to_string(tl.halt_minute[b]);
      std::printf("%s/%s: %s p50 %.3f ms, p99 %.3f ms over %lld minutes x %lld instrument(s); halt minute per "
                  "instrument [%s] (-1: no halt)\n", rt.backend_name().c_str(), rt.precision().c_str(),
                  a.full ? "run_day" : "push", hrm::tools::percentile(latency_ms, 50),
                  hrm::tools::percentile(latency_ms, 99), static_cast<long long>(tl.minutes),
                  static_cast<long long>(tl.batch), halts.c_str());
    }
    return 0;
  } catch (const hrm::Error& e) {
    if (std::string(e.what()) == "help") {
      std::cout << e.hint();
      return 0;
    }
    std::cerr << "error: " << e.what() << "\n";
    if (!e.hint().empty()) std::cerr << "hint: " << e.hint() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: unexpected: " << e.what() << "\n";
    return 2;
  }
}
