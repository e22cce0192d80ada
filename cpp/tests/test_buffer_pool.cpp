// The K/V storage pool: storage comes back when the last holder lets go, is reused for a later take, and the
// pool stays within its byte bound.
#include <gtest/gtest.h>

#include "buffer_pool.hpp"

namespace {

constexpr size_t MB = (1 << 20) / sizeof(float);  // floats in 1 MiB

TEST(BufferPool, ReusesStorageGivenBackByTheLastHolder) {
  auto pool = std::make_shared<hrm::BufferPool>();
  std::vector<float> v = pool->take(2 * MB, 4 * MB);
  EXPECT_EQ(v.size(), 2 * MB);
  EXPECT_GE(v.capacity(), 4 * MB);
  const float* storage = v.data();
  auto shared = pool->share(hrm::Tensor({static_cast<int64_t>(2 * MB)}, std::move(v)));
  auto second = shared;
  shared.reset();
  EXPECT_EQ(pool->take(3 * MB, 0).size(), 3 * MB);  // nothing pooled yet: `second` still holds it
  second.reset();
  std::vector<float> again = pool->take(3 * MB, 0);  // grows within the capacity reserved at first
  EXPECT_EQ(again.data(), storage);
  EXPECT_EQ(again.size(), 3 * MB);
}

TEST(BufferPool, KeepsSmallBuffersOutAndStaysWithinItsBound) {
  auto pool = std::make_shared<hrm::BufferPool>(3 << 20);
  pool->give(std::vector<float>(100));
  EXPECT_EQ(pool->pooled_bytes(), 0u);
  pool->give(std::vector<float>(2 * MB));
  EXPECT_EQ(pool->pooled_bytes(), size_t{2} << 20);
  pool->give(std::vector<float>(2 * MB));  // 4 MiB would pass the 3 MiB bound: freed instead
  EXPECT_EQ(pool->pooled_bytes(), size_t{2} << 20);
  pool->take(MB, 0);
  EXPECT_EQ(pool->pooled_bytes(), 0u);
}

}  // namespace
