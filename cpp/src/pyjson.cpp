#include "pyjson.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "hrm/decisions.hpp"

namespace hrm {

std::string py_float_repr(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x == 0) return std::signbit(x) ? "-0.0" : "0.0";
  char buf[64];
  // The shortest round-trip digits, as Python's repr finds them: d.ddde±XX
  auto res = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  if (res.ec != std::errc()) throw std::runtime_error("to_chars failed");
  std::string s(buf, res.ptr);
  const bool negative = s[0] == '-';
  if (negative) s.erase(0, 1);
  const size_t e = s.find('e');
  const int exp = std::atoi(s.c_str() + e + 1);
  std::string digits = s.substr(0, e);
  if (digits.size() > 1) digits.erase(1, 1);  // drop the '.'
  std::string out;
  if (exp < -4 || exp >= 16) {  // Python's repr switches to scientific outside 1e-4 <= |x| < 1e16
    out = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "") + "e" + (exp < 0 ? "-" : "+");
    const std::string mag = std::to_string(std::abs(exp));
    out += (mag.size() < 2 ? "0" : "") + mag;
  } else if (exp >= 0) {
    if (digits.size() <= static_cast<size_t>(exp) + 1) {
      out = digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<size_t>(exp) + 1) + "." + digits.substr(static_cast<size_t>(exp) + 1);
    }
  } else {
    out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  }
  return negative ? "-" + out : out;
}

std::string py_round(double x, int digits) {
  if (!std::isfinite(x)) return py_float_repr(x);
  // round(x, n) is correctly rounded (half to even on the exact binary value), as glibc's printf is.
  char buf[400];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return py_float_repr(std::strtod(buf, nullptr));
}

std::string py_json_string(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
      continue;
    }
    // Decode one UTF-8 sequence (a stray byte stands for itself) and escape it, as ensure_ascii does.
    uint32_t cp = c;
    int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    if (extra && i + static_cast<size_t>(extra) < s.size()) {
      cp = c & (0x3f >> extra);
      for (int k = 1; k <= extra; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3f);
      i += static_cast<size_t>(extra);
    }
    auto unit = [&](uint32_t u) {
      out += "\\u";
      for (int shift = 12; shift >= 0; shift -= 4) out += hex[(u >> shift) & 15];
    };
    if (cp >= 0x10000) {
      cp -= 0x10000;
      unit(0xd800 + (cp >> 10));
      unit(0xdc00 + (cp & 0x3ff));
    } else {
      unit(cp);
    }
  }
  return out + "\"";
}

std::string py_json_object(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out = "{";
  for (size_t i = 0; i < fields.size(); ++i) out += (i ? ", " : "") + py_json_string(fields[i].first) + ": " + fields[i].second;
  return out + "}";
}

std::string timeline_row(const Timeline& tl, int64_t i, int64_t b) {
  const size_t k = static_cast<size_t>(b * tl.minutes + i);
  return py_json_object({{"minute", std::to_string(tl.first_minute + i)},
                         {"instrument", std::to_string(b)},
                         {"action", py_json_string(ACTIONS.at(static_cast<size_t>(tl.action[k])))},
                         {"confidence", py_round(tl.confidence[k], 6)},
                         {"quantity", py_round(tl.quantity[k], 6)},
                         {"q_halt", py_round(tl.q_halt[k], 6)},
                         {"q_continue", py_round(tl.q_continue[k], 6)},
                         {"halted", tl.halted[k] ? "true" : "false"}});
}

}  // namespace hrm
