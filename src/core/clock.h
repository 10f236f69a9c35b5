// Wall-clock seconds for timings reported to users (phase times, decode timings, progress ETA).
#pragma once
#include <chrono>

namespace lorahub {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace lorahub
