// A dense row-major float32 tensor: the only data type crossing the runtime's API and its backends.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hrm {

using Shape = std::vector<int64_t>;

struct Tensor {
  Shape shape;
  std::vector<float> data;  // row-major, numel() values

  Tensor() = default;
  Tensor(Shape shape, std::vector<float> data);  // checks that data holds numel(shape) values
  static Tensor zeros(Shape shape);

  size_t rank() const { return shape.size(); }
  int64_t dim(size_t i) const { return shape.at(i); }
  size_t numel() const { return data.size(); }
};

size_t numel(const Shape& shape);  // throws std::length_error past 2^40 elements
std::string shape_str(const Shape& shape);  // "(1, 390, 11)", as Python prints a tuple

// [lo, hi) along `axis`, copied.
Tensor slice(const Tensor& t, size_t axis, int64_t lo, int64_t hi);
// Tensors equal in every dim but `axis`, joined along it.
Tensor concat(std::vector<Tensor> parts, size_t axis);

}  // namespace hrm
