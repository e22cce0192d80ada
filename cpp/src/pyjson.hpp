// JSON lines exactly as `hrm-export run --json` prints them with Python's json.dumps: ", " and ": "
// separators, ASCII-escaped strings, and floats as round(x, 6) written by Python's repr (the shortest
// string that reads back to the same double, in fixed notation for exponents -4..15, else scientific).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "hrm/timeline.hpp"

namespace hrm {

std::string py_round(double x, int digits);  // json.dumps(round(x, digits))
std::string py_float_repr(double x);   // json.dumps(x) for a float: repr(x)
std::string py_json_string(const std::string& s);  // json.dumps(s)

// One row per (minute, instrument), in minute order: Timeline.rows() of the Python runtime.
std::string timeline_row(const Timeline& tl, int64_t i, int64_t b);

// A JSON object from already-encoded values, keys in the given order.
std::string py_json_object(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace hrm
