// .npy files (NumPy's format 1.0-3.0) of float32/float64 arrays, read without executing anything: object
// arrays (which need pickle) are refused, as hrm-export run's allow_pickle=False does. Also a writer,
// for the conformance tests' outputs.
#pragma once

#include <filesystem>
#include <string>

#include "hrm/tensor.hpp"

namespace hrm {

// InputError naming the file and what is wrong: missing, not .npy, not a plain float array, truncated.
Tensor read_npy(const std::filesystem::path& path);
void write_npy(const std::filesystem::path& path, const Tensor& t);  // little-endian float32, C order
void write_npy(const std::filesystem::path& path, const std::vector<double>& values, const Shape& shape);
void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& values, const Shape& shape);

}  // namespace hrm
