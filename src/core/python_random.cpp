#include "core/python_random.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <unordered_set>

#include "core/error.h"

namespace lorahub {
namespace {

constexpr size_t kStateWords = 624;  // MT19937's n

// MT19937's init_by_array (Matsumoto and Nishimura, mt19937ar.c), which CPython uses to seed
// from the 32-bit words of an int, least significant first.
std::array<uint32_t, kStateWords> init_by_array(const std::vector<uint32_t>& key) {
  std::array<uint32_t, kStateWords> mt{};
  mt[0] = 19650218u;
  for (size_t i = 1; i < kStateWords; ++i)
    mt[i] = 1812433253u * (mt[i - 1] ^ (mt[i - 1] >> 30)) + static_cast<uint32_t>(i);
  size_t i = 1, j = 0;
  for (size_t k = std::max(kStateWords, key.size()); k > 0; --k) {
    mt[i] =
        (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + key[j] + static_cast<uint32_t>(j);
    if (++i >= kStateWords) {
      mt[0] = mt[kStateWords - 1];
      i = 1;
    }
    if (++j >= key.size()) j = 0;
  }
  for (size_t k = kStateWords - 1; k > 0; --k) {
    mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) - static_cast<uint32_t>(i);
    if (++i >= kStateWords) {
      mt[0] = mt[kStateWords - 1];
      i = 1;
    }
  }
  mt[0] = 0x80000000u;  // non-zero initial state, as in mt19937ar.c
  return mt;
}

// A SeedSequence for std::mt19937::seed that hands over init_by_array's state verbatim: the
// engine then produces CPython's stream (both regenerate the whole state on the first draw).
struct InitByArraySeed {
  using result_type = uint32_t;
  std::array<uint32_t, kStateWords> state;
  template <class It>
  void generate(It begin, It end) const {
    for (size_t i = 0; begin != end; ++begin, ++i) *begin = state[i % kStateWords];
  }
  size_t size() const { return 0; }
  template <class It>
  void param(It) const {}
};

std::vector<uint32_t> int_to_words(uint64_t seed) {
  std::vector<uint32_t> words{static_cast<uint32_t>(seed)};
  if (seed >> 32) words.push_back(static_cast<uint32_t>(seed >> 32));
  return words;
}

}  // namespace

PythonRandom::PythonRandom(uint64_t seed) {
  InitByArraySeed seq{init_by_array(int_to_words(seed))};
  engine_.seed(seq);
}

uint32_t PythonRandom::getrandbits(int k) {
  check(k >= 0 && k <= 32, "getrandbits: {} bits (0 to 32 supported)", k);
  if (k == 0) return 0;
  return static_cast<uint32_t>(engine_()) >> (32 - k);
}

uint64_t PythonRandom::randbelow(uint64_t n) {
  check(n >= 1 && n < (uint64_t{1} << 32), "randbelow: n = {} (1 to 2^32-1 supported)", n);
  const int k = std::bit_width(n);  // Python's n.bit_length()
  uint64_t r = getrandbits(k);
  while (r >= n) r = getrandbits(k);
  return r;
}

std::vector<size_t> PythonRandom::sample(size_t n, size_t k) {
  check(k <= n, "sample: {} from a population of {}", k, n);
  std::vector<size_t> result(k);
  // CPython picks its algorithm by size: a shrinking pool for small populations, rejection
  // against a set of chosen indices for large ones. Both must be mirrored to draw the same.
  size_t setsize = 21;
  if (k > 5)
    setsize += static_cast<size_t>(
        std::pow(4.0, std::ceil(std::log(static_cast<double>(k * 3)) / std::log(4.0))));
  if (n <= setsize) {
    std::vector<size_t> pool(n);
    for (size_t i = 0; i < n; ++i) pool[i] = i;
    for (size_t i = 0; i < k; ++i) {
      const size_t j = randbelow(n - i);
      result[i] = pool[j];
      pool[j] = pool[n - i - 1];
    }
  } else {
    std::unordered_set<size_t> selected;
    for (size_t i = 0; i < k; ++i) {
      size_t j = randbelow(n);
      while (selected.count(j)) j = randbelow(n);
      selected.insert(j);
      result[i] = j;
    }
  }
  return result;
}

}  // namespace lorahub
