#include "hrm/tensor.hpp"

#include <stdexcept>

namespace hrm {

size_t numel(const Shape& shape) {
  size_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::length_error("negative dimension in shape " + shape_str(shape));
    if (d != 0 && n > (size_t{1} << 40) / static_cast<size_t>(d))
      throw std::length_error("shape " + shape_str(shape) + " is too large");
    n *= static_cast<size_t>(d);
  }
  return n;
}

Tensor::Tensor(Shape shape_, std::vector<float> data_) : shape(std::move(shape_)), data(std::move(data_)) {
  if (data.size() != hrm::numel(shape))
    throw std::invalid_argument("tensor of shape " + shape_str(shape) + " given " + std::to_string(data.size()) +
                                " values");
}

Tensor Tensor::zeros(Shape shape) {
  size_t n = hrm::numel(shape);
  return Tensor(std::move(shape), std::vector<float>(n, 0.0f));
}

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

namespace {
// A tensor seen as (outer, axis, inner) around one axis.
struct Around {
  size_t outer = 1, len = 0, inner = 1;
};
Around around(const Shape& shape, size_t axis) {
  if (axis >= shape.size()) throw std::out_of_range("axis " + std::to_string(axis) + " of " + shape_str(shape));
  Around a;
  for (size_t i = 0; i < axis; ++i) a.outer *= static_cast<size_t>(shape[i]);
  a.len = static_cast<size_t>(shape[axis]);
  for (size_t i = axis + 1; i < shape.size(); ++i) a.inner *= static_cast<size_t>(shape[i]);
  return a;
}
}  // namespace

Tensor slice(const Tensor& t, size_t axis, int64_t lo, int64_t hi) {
  Around a = around(t.shape, axis);
  if (lo < 0 || hi < lo || static_cast<size_t>(hi) > a.len)
    throw std::out_of_range("slice [" + std::to_string(lo) + ", " + std::to_string(hi) + ") of " + shape_str(t.shape));
  Shape shape = t.shape;
  shape[axis] = hi - lo;
  std::vector<float> out;
  out.reserve(a.outer * static_cast<size_t>(hi - lo) * a.inner);
  for (size_t o = 0; o < a.outer; ++o) {
    const float* src = t.data.data() + (o * a.len + static_cast<size_t>(lo)) * a.inner;
    out.insert(out.end(), src, src + static_cast<size_t>(hi - lo) * a.inner);
  }
  return Tensor(std::move(shape), std::move(out));
}

Tensor concat(std::vector<Tensor> parts, size_t axis) {
  if (parts.empty()) throw std::invalid_argument("concat of no tensors");
  if (parts.size() == 1) return std::move(parts[0]);
  Shape shape = parts[0].shape;
  int64_t total = 0;
  for (const Tensor& p : parts) {
    Shape a = p.shape, b = shape;
    if (a.size() != b.size() || axis >= a.size()) throw std::invalid_argument("concat: ranks differ");
    a[axis] = b[axis] = 0;
    if (a != b) throw std::invalid_argument("concat: " + shape_str(p.shape) + " vs " + shape_str(shape));
    total += p.shape[axis];
  }
  shape[axis] = total;
  Around whole = around(shape, axis);
  std::vector<float> out;
  out.reserve(hrm::numel(shape));
  for (size_t o = 0; o < whole.outer; ++o) {
    for (const Tensor& p : parts) {
      size_t chunk = static_cast<size_t>(p.shape[axis]) * whole.inner;
      const float* src = p.data.data() + o * chunk;
      out.insert(out.end(), src, src + chunk);
    }
  }
  return Tensor(std::move(shape), std::move(out));
}

}  // namespace hrm
