#include "npy.hpp"

#include <cstring>
#include <fstream>

#include "hrm/errors.hpp"

namespace hrm {

namespace {
constexpr size_t MAX_HEADER = 1 << 16;

[[noreturn]] void refuse(const std::filesystem::path& p, const std::string& why) {
  throw InputError(p.string() + ": " + why, "save tokens with np.save(path, float32 array)");
}

// The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (1, 390, 11), }
// The value of `key`: a quoted string (without its quotes), True/False, or a tuple's text.
std::string dict_value(const std::string& header, const std::string& key, const std::filesystem::path& p) {
  size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) refuse(p, "not a .npy file (header has no '" + key + "')");
  at = header.find(':', at);
  const size_t start = at == std::string::npos ? at : header.find_first_not_of(' ', at + 1);
  if (start == std::string::npos) refuse(p, "not a .npy file (header cut at '" + key + "')");
  const char open = header[start];
  const char close = open == '\'' ? '\'' : open == '(' ? ')' : ',';
  const size_t end = header.find(close, start + 1);
  if (end == std::string::npos) refuse(p, "not a .npy file (header cut at '" + key + "')");
  if (open == '\'') return header.substr(start + 1, end - start - 1);
  if (open == '(') return header.substr(start, end - start + 1);
  return header.substr(start, end - start);
}

template <class T>
void write_raw(const std::filesystem::path& path, const char* descr, const Shape& shape, const T* data, size_t n) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";  // Python's one-element tuple
  std::string header = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.put(static_cast<char>(len & 0xff));
  out.put(static_cast<char>(len >> 8));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * sizeof(T)));
  if (!out) throw std::runtime_error(path.string() + ": write failed");
}
}  // namespace

Tensor read_npy(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) refuse(path, "no such file");
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  if (in.gcount() != 8 || std::memcmp(magic, "\x93NUMPY", 6) != 0) refuse(path, "not a .npy file (no NumPy magic)");
  const int major = static_cast<unsigned char>(magic[6]);
  if (major < 1 || major > 3) refuse(path, "not a .npy file (format version " + std::to_string(major) + ")");
  unsigned char len_bytes[4] = {};
  const int len_size = major == 1 ? 2 : 4;
  in.read(reinterpret_cast<char*>(len_bytes), len_size);
  size_t header_len = 0;
  for (int i = len_size - 1; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (!in || header_len > MAX_HEADER) refuse(path, "not a .npy file (bad header length)");
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  if (static_cast<size_t>(in.gcount()) != header_len) refuse(path, "not a .npy file (header cut short)");

  const std::string descr = dict_value(header, "descr", path);
  if (dict_value(header, "fortran_order", path) != "False")
    refuse(path, "a Fortran-ordered array (save it with np.save(path, np.ascontiguousarray(a)))");
  size_t item = 0;
  if (descr == "<f4" || descr == "=f4") item = 4;
  else if (descr == "<f8" || descr == "=f8") item = 8;
  else if (descr == "|O" || descr.find('O') != std::string::npos) refuse(path, "not a plain numeric array (object arrays need pickle, refused)");
  else refuse(path, "dtype " + descr + " is not little-endian float32 or float64");

  Shape shape;
  const std::string dims = dict_value(header, "shape", path);  // "(4, 390, 11)", "(3,)", "()"
  std::string digits;
  for (char c : dims) {
    if (c >= '0' && c <= '9') {
      digits += c;
    } else if (c == ',' || c == ')') {
      if (digits.size() > 12) refuse(path, "shape " + dims + " is too large");
      if (!digits.empty()) shape.push_back(std::stoll(digits));
      digits.clear();
    } else if (c != '(' && c != ' ' && c != 'L') {
      refuse(path, "not a .npy file (shape " + dims + ")");
    }
  }
  size_t n = 0;
  try {
    n = numel(shape);
  } catch (const std::length_error&) {
    refuse(path, "shape " + dims + " is too large");
  }
  const auto data_start = in.tellg();
  in.seekg(0, std::ios::end);
  const auto available = static_cast<size_t>(in.tellg() - data_start);
  if (available != n * item)
    refuse(path, "holds " + std::to_string(available) + " data bytes, shape " + dims + " needs " + std::to_string(n * item));
  in.seekg(data_start);
  std::vector<float> data(n);
  if (item == 4) {
    in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(n * 4));
  } else {
    std::vector<double> wide(n);
    in.read(reinterpret_cast<char*>(wide.data()), static_cast<std::streamsize>(n * 8));
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<float>(wide[i]);  // as np.asarray(x, np.float32)
  }
  if (!in) refuse(path, "read error");
  return Tensor(std::move(shape), std::move(data));
}

void write_npy(const std::filesystem::path& path, const Tensor& t) {
  write_raw(path, "<f4", t.shape, t.data.data(), t.data.size());
}
void write_npy(const std::filesystem::path& path, const std::vector<double>& values, const Shape& shape) {
  if (numel(shape) != values.size()) throw std::invalid_argument("write_npy: shape does not fit the values");
  write_raw(path, "<f8", shape, values.data(), values.size());
}
void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& values, const Shape& shape) {
  if (numel(shape) != values.size()) throw std::invalid_argument("write_npy: shape does not fit the values");
  write_raw(path, "<i8", shape, values.data(), values.size());
}

}  // namespace hrm
