#include "manifest.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "hrm/errors.hpp"
#include "sha256.hpp"
#include "signature.hpp"

namespace hrm {

namespace {
constexpr std::uintmax_t MAX_MANIFEST_BYTES = 64u << 20;  // a real one is a few kB; refuse before reading more

std::string quoted(const std::string& s) { return "'" + s + "'"; }  // Python's repr of a plain string

std::string str_field(const Json& j, const char* key) {
  if (!j.contains(key)) throw std::invalid_argument(std::string("missing key '") + key + "'");
  if (!j.at(key).is_string()) throw std::invalid_argument(std::string("'") + key + "' is not a string");
  return j.at(key).get<std::string>();
}

std::vector<Axis> parse_axes(const Json& shape) {
  if (!shape.is_array()) throw std::invalid_argument("an I/O shape is not a list");
  std::vector<Axis> axes;
  for (const Json& d : shape) {
    if (d.is_number_integer()) {
      axes.push_back(Axis{d.get<int64_t>(), ""});
    } else if (d.is_string()) {
      const std::string s = d.get<std::string>();
      const bool digits = !s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() < 12;
      axes.push_back(digits ? Axis{std::stoll(s), ""} : Axis{-1, s});  // "390" reads as 390, as in Python
    } else {
      throw std::invalid_argument("an I/O axis is neither a size nor a name");
    }
  }
  return axes;
}

std::vector<IoRecord> parse_io(const Json& j, const char* key) {
  std::vector<IoRecord> out;
  if (!j.contains(key)) return out;
  if (!j.at(key).is_array()) throw std::invalid_argument(std::string("'") + key + "' is not a list");
  for (const Json& r : j.at(key)) {
    if (!r.is_object()) throw std::invalid_argument(std::string("an entry of '") + key + "' is not an object");
    IoRecord io;
    io.name = r.contains("name") && r.at("name").is_string() ? r.at("name").get<std::string>() : "";
    io.dtype = r.contains("dtype") && r.at("dtype").is_string() ? r.at("dtype").get<std::string>() : "";
    io.shape = r.contains("shape") ? parse_axes(r.at("shape")) : std::vector<Axis>{};
    out.push_back(std::move(io));
  }
  return out;
}

// A path recorded in the manifest must name a file inside the bundle: relative, no "..", not empty.
void check_relative(const std::string& p) {
  const fs::path path(p);
  bool up = false;
  for (const fs::path& part : path) up = up || part == "..";
  if (p.empty() || path.is_absolute() || path.has_root_name() || path.has_root_directory() || up)
    throw ManifestError("artifact path " + quoted(p) + " leaves the bundle (absolute paths and '..' are refused)");
}

Artifact parse_artifact(const Json& j) {
  if (!j.is_object()) throw std::invalid_argument("an artifact is not an object");
  Artifact a;
  a.module = str_field(j, "module");
  a.precision = str_field(j, "precision");
  a.format = str_field(j, "format");
  a.path = str_field(j, "path");
  a.sha256 = str_field(j, "sha256");
  a.inputs = parse_io(j, "inputs");
  a.outputs = parse_io(j, "outputs");
  if (j.contains("opset") && !j.at("opset").is_null()) a.opset = j.at("opset").get<int64_t>();
  if (j.contains("profile") && j.at("profile").is_string()) {
    a.profiles = {j.at("profile").get<std::string>()};
  } else if (j.contains("profile") && j.at("profile").is_array()) {
    a.profiles = j.at("profile").get<std::vector<std::string>>();
  }
  a.extra = j.contains("extra") ? j.at("extra") : Json::object();
  return a;
}

Profile parse_profile(const std::string& name, const Json& j) {
  Profile p;
  p.name = name;
  if (!j.is_object() || !j.contains("axes") || !j.at("axes").is_object())
    throw std::invalid_argument("profile '" + name + "' has no axes");
  for (const auto& [axis, v] : j.at("axes").items()) {
    if (!v.is_array() || v.size() != 3) throw std::invalid_argument("profile '" + name + "' axis " + axis + " is not [min, opt, max]");
    p.axes[axis] = {v[0].get<int64_t>(), v[1].get<int64_t>(), v[2].get<int64_t>()};
    // Profile's own rule (hrm_export/profiles.py): min <= opt <= max, min >= 1 (0 for past_minutes)
    const auto& [lo, opt, hi] = p.axes[axis];
    if (lo < (axis == "past_minutes" ? 0 : 1) || lo > opt || opt > hi)
      throw std::invalid_argument("profile '" + name + "': axis " + axis + " = [" + std::to_string(lo) + ", " +
                                  std::to_string(opt) + ", " + std::to_string(hi) + "] is not min <= opt <= max with "
                                  "min >= " + (axis == "past_minutes" ? "0" : "1"));
  }
  return p;
}
}  // namespace

std::string axes_str(const std::vector<Axis>& axes) {
  std::string s = "[";
  for (size_t i = 0; i < axes.size(); ++i)
    s += (i ? ", " : "") + (axes[i].dynamic() ? quoted(axes[i].name) : std::to_string(axes[i].size));
  return s + "]";
}

Config config_from_json(const Json& j) {
  if (!j.is_object()) throw std::invalid_argument("config is not an object");
  Config c;
  auto integer = [&](const char* k, int64_t& v) {
    if (!j.contains(k)) return;
    if (!j.at(k).is_number_integer()) throw std::invalid_argument(std::string("config ") + k + " is not an integer");
    v = j.at(k).get<int64_t>();
  };
  auto real = [&](const char* k, double& v) {
    if (!j.contains(k)) return;
    if (!j.at(k).is_number()) throw std::invalid_argument(std::string("config ") + k + " is not a number");
    v = j.at(k).get<double>();
  };
  const std::vector<std::string> known = {"n_day_features", "n_minute_features", "max_days", "max_minutes", "h_layers",
                                          "h_dim", "h_heads", "h_mlp_ratio", "l_layers", "l_dim", "l_heads",
                                          "l_mlp_ratio", "cross_attention", "film_pool", "n_actions", "norm_eps",
                                          "dropout"};
  for (const auto& item : j.items())
    if (std::find(known.begin(), known.end(), item.key()) == known.end())
      throw std::invalid_argument("unknown HRMConfig field(s) ['" + item.key() + "']");
  integer("n_day_features", c.n_day_features);
  integer("n_minute_features", c.n_minute_features);
  integer("max_days", c.max_days);
  integer("max_minutes", c.max_minutes);
  integer("h_layers", c.h_layers);
  integer("h_dim", c.h_dim);
  integer("h_heads", c.h_heads);
  real("h_mlp_ratio", c.h_mlp_ratio);
  integer("l_layers", c.l_layers);
  integer("l_dim", c.l_dim);
  integer("l_heads", c.l_heads);
  real("l_mlp_ratio", c.l_mlp_ratio);
  if (j.contains("cross_attention")) {
    if (!j.at("cross_attention").is_boolean()) throw std::invalid_argument("config cross_attention is not a boolean");
    c.cross_attention = j.at("cross_attention").get<bool>();
  }
  if (j.contains("film_pool")) {  // what the FiLM generator reads: inside the H graph, so only checked here
    const auto& v = j.at("film_pool");
    if (!v.is_string() || (v.get<std::string>() != "mean" && v.get<std::string>() != "mean_last"))
      throw std::invalid_argument("config film_pool is not one of \"mean\", \"mean_last\"");
    c.film_pool = v.get<std::string>();
  }
  integer("n_actions", c.n_actions);
  real("norm_eps", c.norm_eps);
  real("dropout", c.dropout);
  // HRMConfig's own invariants, plus positive sizes (a zero would divide by zero or size nothing)
  for (int64_t v : {c.n_day_features, c.n_minute_features, c.max_days, c.max_minutes, c.h_layers, c.h_dim, c.h_heads,
                    c.l_layers, c.l_dim, c.l_heads})
    if (v < 1 || v > (int64_t{1} << 20)) throw std::invalid_argument("config sizes must be between 1 and 2^20");
  if (c.h_dim % c.h_heads) throw std::invalid_argument("h_dim not divisible by h_heads");
  if (c.l_dim % c.l_heads) throw std::invalid_argument("l_dim not divisible by l_heads");
  if (c.n_actions != 3) throw std::invalid_argument("the trading heads are short/flat/long: n_actions must be 3");
  return c;
}

// One book of token_ranges ({"feature": [low, high], ...} in feature order), as runtime/inputs.py token_books.
static TokenBook parse_token_book(const Json& record, const std::string& book, int64_t n, const fs::path& path,
                                  const std::string& reexport) {
  TokenBook out;
  const Json* table = record.contains(book) && record.at(book).is_object() ? &record.at(book) : nullptr;
  bool ok = table != nullptr && static_cast<int64_t>(table->size()) == n;
  if (ok) {
    for (const auto& [name, pair] : table->items()) {
      ok = pair.is_array() && pair.size() == 2 && pair[0].is_number() && pair[1].is_number();
      if (!ok) break;
      const double lo = pair[0].get<double>(), hi = pair[1].get<double>();
      ok = std::isfinite(lo) && std::isfinite(hi) && lo <= hi;
      if (!ok) break;
      out.names.push_back(name);
      out.low.push_back(static_cast<float>(lo));
      out.high.push_back(static_cast<float>(hi));
    }
  }
  if (!ok)
    throw ManifestError(path.string() + ": token_ranges." + book + " is not " + std::to_string(n) +
                            " [low, high] pairs, one per feature",
                        reexport);
  return out;
}

Manifest Manifest::load(const fs::path& dir_or_file, const std::string& trust) {
  fs::path dir = dir_or_file;
  std::error_code ec;
  fs::path path = fs::is_directory(dir, ec) || !dir.has_extension() ? dir / MANIFEST_NAME : dir;
  if (path.filename() == MANIFEST_NAME) dir = path.parent_path();
  if (!fs::is_regular_file(path, ec))
    throw ManifestError(dir.string() + ": no " + MANIFEST_NAME + " (not a bundle, or its export did not finish)",
                        "export one: hrm-export export --out " + dir.string());
  check_bundle_signature(dir, trust);  // with a trusted key: the signature first, before anything is read
  const std::string reexport = "re-export the bundle: hrm-export export --out " + dir.string();
  Manifest m;
  m.dir = dir;
  Json raw;
  try {
    if (fs::file_size(path) > MAX_MANIFEST_BYTES) throw std::invalid_argument("larger than 64 MiB");
    std::ifstream in(path, std::ios::binary);
    raw = Json::parse(in);
    if (!raw.is_object()) throw std::invalid_argument("not a JSON object");
    const std::string format = raw.contains("format") && raw.at("format").is_string() ? raw.at("format").get<std::string>() : "None";
    if (format != MANIFEST_FORMAT)
      throw std::invalid_argument("format " + (format == "None" ? format : quoted(format)) + ", expected " +
                                  quoted(MANIFEST_FORMAT));
    if (!raw.contains("config")) throw std::invalid_argument("missing key 'config'");
    if (!raw.contains("artifacts") || !raw.at("artifacts").is_array()) throw std::invalid_argument("missing key 'artifacts'");
    m.config = config_from_json(raw.at("config"));
    m.versions = raw.value("versions", Json::object());
    m.checkpoint = raw.value("checkpoint", Json::object());
    if (raw.contains("profiles") && raw.at("profiles").is_object())
      for (const auto& [name, p] : raw.at("profiles").items()) m.profiles.push_back(parse_profile(name, p));
    for (const Json& a : raw.at("artifacts")) m.artifacts.push_back(parse_artifact(a));
    if (raw.contains("token_ranges") && raw.at("token_ranges").is_object() && !raw.at("token_ranges").empty()) {
      m.days_range = parse_token_book(raw.at("token_ranges"), "days", m.config.n_day_features, path, reexport);
      m.minutes_range = parse_token_book(raw.at("token_ranges"), "minutes", m.config.n_minute_features, path, reexport);
    }
  } catch (const ManifestError&) {
    throw;
  } catch (const std::exception& e) {  // nlohmann's parse/type errors, our invalid_argument, filesystem errors
    throw ManifestError(path.string() + ": corrupt manifest (" + e.what() + ")", reexport);
  }
  for (const Artifact& a : m.artifacts) {
    try {
      check_relative(a.path);
    } catch (const ManifestError& e) {
      throw ManifestError(path.string() + ": " + e.what(), reexport);
    }
  }
  return m;
}

const Artifact& Manifest::find(const std::string& module, const std::string& precision, const std::string& format) const {
  for (const Artifact& a : artifacts)
    if (a.module == module && a.precision == precision && a.format == format) return a;
  std::string have;
  for (const Artifact& a : artifacts) have += (have.empty() ? "" : ", ") + a.module + "/" + a.precision + "/" + a.format;
  throw ManifestError(dir.string() + ": no " + module + "/" + precision + "/" + format + " artifact (bundle has: " +
                          (have.empty() ? "nothing" : have) + ")",
                      rebuild_hint(precision, format, dir));
}

const Profile* Manifest::profile(const std::string& name) const {
  for (const Profile& p : profiles)
    if (p.name == name) return &p;
  return nullptr;
}

fs::path Manifest::artifact_path(const Artifact& a) const {
  check_relative(a.path);
  const fs::path p = dir / a.path;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(p, ec)))
    throw ManifestError(p.string() + ": listed in the manifest but missing", rebuild_hint(a.precision, a.format, dir));
  const fs::path real = fs::weakly_canonical(p, ec), root = fs::weakly_canonical(dir, ec);
  const auto rel = real.lexically_relative(root);
  if (ec || rel.empty() || *rel.begin() == "..")
    throw ManifestError(p.string() + ": resolves to " + real.string() + ", outside the bundle (a symlink out is refused)",
                        rebuild_hint(a.precision, a.format, dir));
  if (!fs::is_regular_file(real, ec))
    throw ManifestError(p.string() + ": listed in the manifest but not a file", rebuild_hint(a.precision, a.format, dir));
  return p;
}

void Manifest::verify_hashes() const {
  for (const Artifact& a : artifacts) {
    const fs::path p = artifact_path(a);
    std::string digest;
    try {
      digest = file_sha256(p);
    } catch (const std::exception& e) {
      throw ManifestError(p.string() + ": " + e.what(), rebuild_hint(a.precision, a.format, dir));
    }
    if (digest != a.sha256)
      throw ManifestError(p.string() + ": sha256 " + digest.substr(0, 12) + "\u2026 differs from the manifest's " +
                              a.sha256.substr(0, 12) + "\u2026 (file changed after it was made)",
                          rebuild_hint(a.precision, a.format, dir));
  }
}

std::string rebuild_hint(const std::string& precision, const std::string& format, const fs::path& dir) {
  if (format == "trt-plan") return "rebuild the engine: hrm-export build " + dir.string() + " --precision " + precision;
  if (precision != "fp32") return "re-create the " + precision + " artifacts of " + dir.string() + " (docs/cli.md)";
  return "re-export the bundle: hrm-export export --out " + dir.string();
}

void check_bundle_signature(const fs::path& dir, const std::string& trust) {
  if (!trust.empty()) verify_bundle_signature(dir, trust);
}

}  // namespace hrm
