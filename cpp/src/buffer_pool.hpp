// Storage for the large outputs (the K/V cache), reused from push to push. A fresh multi-megabyte
// allocation costs a page fault per 4 kB page on first touch: measured on the 2-core VM, 10.8 ms to allocate
// the default model's 8.5 MB present_kv at minute 389, against 1 ms when the heap reuses it, out of a
// ~20 ms int8-cpu push. ONNX Runtime's own arena avoids this for the Python runtime; this pool does it here.
// A K/V cache goes back to the pool when the last session (or fork) holding it lets go.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "hrm/tensor.hpp"

namespace hrm {

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  static constexpr size_t MIN_BYTES = 1 << 20;  // smaller outputs are cheap to allocate: not pooled

  explicit BufferPool(size_t max_bytes = size_t{256} << 20) : max_bytes_(max_bytes) {}

  // A vector of n floats (contents unspecified), from the pool when one is large enough; a new one reserves
  // `reserve` floats, so a cache that grows minute by minute is not reallocated each minute.
  std::vector<float> take(size_t n, size_t reserve);
  // Keep v's storage for a later take, while the pool holds at most max_bytes (and at least one buffer).
  void give(std::vector<float>&& v);
  // A tensor whose storage returns to this pool when the last shared_ptr to it goes.
  std::shared_ptr<const Tensor> share(Tensor&& t);
  size_t pooled_bytes();

 private:
  std::mutex mutex_;
  std::vector<std::vector<float>> free_;
  size_t bytes_ = 0;
  size_t max_bytes_;
};

}  // namespace hrm
