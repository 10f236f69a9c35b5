#pragma once
// CPython's `random` module, as far as LoraHub's reproduce_bbh.py uses it:
//   random.seed(seed); random.sample(LORA_MODULE_NAMES, 20)
// With the same pool order and seed, PythonRandom::sample draws the same indices as CPython (3.2+;
// the integer seeding and random.sample are unchanged since), so a run can use exactly the
// modules the reference drew for that seed.
//
// Generation is std::mt19937, the same Mersenne Twister as CPython's; only the seeding is
// ours: CPython seeds an int through MT's init_by_array on its 32-bit words, which no
// standard seed sequence reproduces (std::seed_seq scrambles differently).
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace lorahub {

class PythonRandom {
 public:
  // random.seed(seed) for a non-negative int seed.
  explicit PythonRandom(uint64_t seed);

  // random.getrandbits(k), 0 <= k <= 32.
  uint32_t getrandbits(int k);

  // random._randbelow(n): uniform in [0, n), by rejection on bit_length(n) bits; 1 <= n < 2^32.
  uint64_t randbelow(uint64_t n);

  // random.sample(range(n), k): k distinct indices in CPython's order; 0 <= k <= n.
  std::vector<size_t> sample(size_t n, size_t k);

 private:
  std::mt19937 engine_;
};

}  // namespace lorahub
