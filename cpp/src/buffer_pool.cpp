#include "buffer_pool.hpp"

#include <algorithm>

namespace hrm {

std::vector<float> BufferPool::take(size_t n, size_t reserve) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto best = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it)
      if (it->capacity() >= n && (best == free_.end() || it->capacity() < best->capacity())) best = it;
    if (best != free_.end()) {
      std::vector<float> v = std::move(*best);
      free_.erase(best);
      bytes_ -= v.capacity() * sizeof(float);
      v.resize(n);  // within capacity: no reallocation; only a grown tail is written (zeros)
      return v;
    }
  }
  std::vector<float> v;
  v.reserve(std::max(n, reserve));
  v.resize(n);
  return v;
}

void BufferPool::give(std::vector<float>&& v) {
  const size_t bytes = v.capacity() * sizeof(float);
  if (bytes < MIN_BYTES) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!free_.empty() && bytes_ + bytes > max_bytes_) return;  // freed with v
  bytes_ += bytes;
  free_.push_back(std::move(v));
}

size_t BufferPool::pooled_bytes() {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

std::shared_ptr<const Tensor> BufferPool::share(Tensor&& t) {
  std::weak_ptr<BufferPool> pool = weak_from_this();
  return std::shared_ptr<const Tensor>(new Tensor(std::move(t)), [pool](const Tensor* p) {
    std::unique_ptr<Tensor> owned(const_cast<Tensor*>(p));  // created non-const just above
    if (auto alive = pool.lock()) alive->give(std::move(owned->data));
  });
}

}  // namespace hrm
