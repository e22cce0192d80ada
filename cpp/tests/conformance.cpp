// hrm_conformance FIXTURES OUT: runs the fixtures written by tests/cpp/fixtures.py through the C++ runtime
// and writes what it computed as .npy files, for tests/cpp/test_cpp_conformance.py to judge with the
// project's parity budgets and decision rule. Per case (cases.json):
//   OUT/<case>/h/{h_tokens,film_gamma,film_beta}.npy           the H-module over the case's days
//   OUT/<case>/l_step/<k>_{action_logits,...,present_kv}.npy    chained l_step calls of the given sizes
//   OUT/<case>/{run_day,stream,stream_<n>}/<field>.npy           decisions of run_day and of pushes
// plus OUT/repr.txt: py_round(x, 6) of every value of floats_hex.txt (float.hex() lines), one per line.
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "hrm/runtime.hpp"
#include "npy.hpp"
#include "pyjson.hpp"
#include "runtime_impl.hpp"

namespace fs = std::filesystem;

namespace {

void write_timeline(const fs::path& dir, const hrm::Timeline& tl) {
  fs::create_directories(dir);
  const hrm::Shape bt = {tl.batch, tl.minutes};
  hrm::write_npy(dir / "action_logits.npy", hrm::Tensor({tl.batch, tl.minutes, 3}, tl.action_logits));
  std::vector<float> q;
  for (size_t i = 0; i < tl.q_halt.size(); ++i) q.insert(q.end(), {tl.q_halt[i], tl.q_continue[i]});
  hrm::write_npy(dir / "q_values.npy", hrm::Tensor({tl.batch, tl.minutes, 2}, q));
  hrm::write_npy(dir / "quantity.npy", tl.quantity, bt);
  hrm::write_npy(dir / "action.npy", tl.action, bt);
  hrm::write_npy(dir / "confidence.npy", tl.confidence, bt);
  hrm::write_npy(dir / "halted.npy", std::vector<int64_t>(tl.halted.begin(), tl.halted.end()), bt);
  hrm::write_npy(dir / "halt_minute.npy", tl.halt_minute, {tl.batch});
}

hrm::Timeline stream(const hrm::Runtime& rt, const hrm::Tensor& days, const hrm::Tensor& minutes, int64_t step) {
  hrm::Session s = rt.start_day(days);
  std::vector<hrm::Timeline> parts;
  for (int64_t t = 0; t < minutes.shape[1]; t += step)
    parts.push_back(s.push_timeline(hrm::slice(minutes, 1, t, std::min(minutes.shape[1], t + step)), t));
  return hrm::join_minutes(parts);
}

void run_case(const fs::path& fixtures, const fs::path& out, const nlohmann::json& c) {
  const std::string name = c.at("name");
  hrm::OpenOptions o;
  o.backend = "ort-cpu";
  o.precision = c.at("precision");
  const std::string bundle = (fixtures / c.at("bundle").get<std::string>()).string();
  const hrm::Tensor days = hrm::read_npy(fixtures / c.at("days").get<std::string>());
  const hrm::Tensor minutes = hrm::read_npy(fixtures / c.at("minutes").get<std::string>());
  const fs::path dir = out / name;
  hrm::Runtime rt = hrm::Runtime::open(bundle, o);

  fs::create_directories(dir / "h");
  const hrm::DayFilm film = rt.h(days);
  hrm::write_npy(dir / "h" / "h_tokens.npy", film.h_tokens);
  hrm::write_npy(dir / "h" / "film_gamma.npy", film.gamma);
  hrm::write_npy(dir / "h" / "film_beta.npy", film.beta);

  // The L-step call itself, chained from an empty cache: the per-module outputs of l_step.
  hrm::detail::RuntimeImpl impl(hrm::open_bundle(bundle, o));
  fs::create_directories(dir / "l_step");
  hrm::Tensor kv = impl.empty_kv(days.shape[0]);
  int64_t t = 0, k = 0;
  for (int64_t n : c.at("l_step_calls").get<std::vector<int64_t>>()) {
    hrm::detail::StepHeads s = impl.l_step(hrm::slice(minutes, 1, t, t + n), film, kv);
    const std::string p = std::to_string(k++) + "_";
    hrm::write_npy(dir / "l_step" / (p + "action_logits.npy"), s.action_logits);
    hrm::write_npy(dir / "l_step" / (p + "quantity.npy"), s.quantity);
    hrm::write_npy(dir / "l_step" / (p + "q_values.npy"), s.q_values);
    hrm::write_npy(dir / "l_step" / (p + "present_kv.npy"), s.present_kv);
    kv = std::move(s.present_kv);
    t += n;
  }

  write_timeline(dir / "run_day", rt.run_day(days, minutes));
  write_timeline(dir / "stream", stream(rt, days, minutes, 1));
  const int64_t chunk = c.value("stream_chunk", int64_t{7});
  write_timeline(dir / ("stream_" + std::to_string(chunk)), stream(rt, days, minutes, chunk));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: hrm_conformance FIXTURES OUT\n";
    return 2;
  }
  try {
    const fs::path fixtures = argv[1], out = argv[2];
    std::ifstream in(fixtures / "cases.json");
    const nlohmann::json spec = nlohmann::json::parse(in);
    for (const auto& c : spec.at("cases")) run_case(fixtures, out, c);
    // float.hex() of each value (exact), as Python wrote them; strtod reads hex floats exactly
    std::ifstream raw(fixtures / spec.at("floats_hex").get<std::string>());
    std::ofstream repr(out / "repr.txt");
    for (std::string line; std::getline(raw, line);) repr << hrm::py_round(std::strtod(line.c_str(), nullptr), 6) << "\n";
    return 0;
  } catch (const hrm::Error& e) {
    std::cerr << "error: " << e.what() << "\nhint: " << e.hint() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
