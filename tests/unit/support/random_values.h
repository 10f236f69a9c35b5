#pragma once
// Test data shared by the unit tests: normally distributed values, deterministic for the seed
// (or for a generator the test threads through several tensors).
#include <cstddef>
#include <random>
#include <vector>

namespace lorahub::test_support {

inline std::vector<float> random_values(size_t n, std::mt19937& rng, float stddev = 1.0f) {
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

inline std::vector<float> random_values(size_t n, unsigned seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  return random_values(n, rng, stddev);
}

}  // namespace lorahub::test_support
