// Known answers from CPython 3.11 (`random.seed(s); random.sample(range(n), k)` and
// `random.getrandbits(32)`); tests/parity/test_python_sample.py checks more against the live
// interpreter through the CLI.
#include "core/python_random.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace lorahub {
namespace {

using Indices = std::vector<size_t>;

TEST(PythonRandom, GetrandbitsMatchesCPython) {
  PythonRandom rng(12345);
  EXPECT_EQ(rng.getrandbits(32), 1789368711u);
  EXPECT_EQ(rng.getrandbits(32), 3146859322u);
  EXPECT_EQ(rng.getrandbits(32), 43676229u);
}

TEST(PythonRandom, SampleFromSmallPoolMatchesCPython) {
  // The shrinking-pool branch (n <= setsize): the reference's 20 of a small library.
  EXPECT_EQ(PythonRandom(1).sample(26, 20),
            (Indices{4, 18, 2, 8, 3, 15, 14, 20, 12, 6, 21, 7, 0, 16, 17, 9, 13, 19, 25, 5}));
  EXPECT_EQ(PythonRandom(5).sample(26, 20),
            (Indices{19, 8, 23, 11, 20, 16, 0, 14, 7, 1, 5, 21, 15, 17, 3, 6, 24, 18, 22, 25}));
  EXPECT_EQ(PythonRandom(0).sample(10, 3), (Indices{6, 9, 0}));
  EXPECT_EQ(PythonRandom(7).sample(5, 5), (Indices{2, 1, 3, 0, 4}));
}

TEST(PythonRandom, SampleFromLargePoolMatchesCPython) {
  // The rejection-set branch: 20 of the paper's ~200 modules.
  EXPECT_EQ(PythonRandom(42).sample(196, 20),
            (Indices{163, 28,  6,  189, 70,  62, 57, 35, 188, 26,
                     173, 139, 22, 151, 108, 8,  7,  23, 55,  59}));
  EXPECT_EQ(PythonRandom(3).sample(1000, 1), (Indices{243}));
}

TEST(PythonRandom, SeedsAboveThirtyTwoBitsUseBothWords) {
  EXPECT_EQ(PythonRandom(4294967303ull).sample(100, 5), (Indices{28, 97, 45, 43, 7}));
}

TEST(PythonRandomMalformed, ImpossibleRequestsThrow) {
  PythonRandom rng(1);
  EXPECT_THROW(rng.sample(3, 4), Error);
  EXPECT_THROW(rng.randbelow(0), Error);
  EXPECT_THROW(rng.getrandbits(33), Error);
}

}  // namespace
}  // namespace lorahub
