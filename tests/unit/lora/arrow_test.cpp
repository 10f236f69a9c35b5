// Arrow routing (lora/arrow.h, models/linear.h add_routed_lora): the prototype is the top right
// singular vector of B·A, the routed side path is the per-token mixture written out by hand,
// GenKnowSub subtracts the general modules' mean factors, and bad routers fail cleanly. Parity
// with PEFT itself: tests/parity/test_arrow_peft.py.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "core/error.h"
#include "lora/arrow.h"
#include "models/linear.h"
#include "support/one_layer_module.h"
#include "support/random_values.h"

namespace lorahub {
namespace {
using test_support::random_values;

constexpr int64_t kR = 3, kIn = 7, kOut = 5;

// One target layer "enc.q" [kOut, kIn] of rank kR, scale 2.
LoraModule make_module(const std::string& path, unsigned seed) {
  return test_support::one_layer_module(path, seed, kR, kIn, kOut);
}

ModuleSet make_set(size_t n, unsigned first_seed) {
  std::vector<LoraModule> modules;
  for (size_t i = 0; i < n; ++i)
    modules.push_back(make_module("m" + std::to_string(i), first_seed + static_cast<unsigned>(i)));
  return ModuleSet::from_modules(std::move(modules));
}

// (B·A)ᵀ(B·A) v by power iteration in double on the explicit product, many steps: an independent
// way to the top right singular vector.
std::vector<double> power_iteration(const std::vector<float>& A, const std::vector<float>& B) {
  std::vector<double> w(kOut * kIn, 0.0);
  for (int64_t o = 0; o < kOut; ++o)
    for (int64_t i = 0; i < kIn; ++i)
      for (int64_t k = 0; k < kR; ++k) w[o * kIn + i] += double(B[o * kR + k]) * A[k * kIn + i];
  std::vector<double> v(kIn, 1.0), u(kOut);
  for (int step = 0; step < 5000; ++step) {
    for (int64_t o = 0; o < kOut; ++o)
      u[o] = std::inner_product(v.begin(), v.end(), w.begin() + o * kIn, 0.0);
    std::fill(v.begin(), v.end(), 0.0);
    for (int64_t o = 0; o < kOut; ++o)
      for (int64_t i = 0; i < kIn; ++i) v[i] += w[o * kIn + i] * u[o];
    const double n = std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0));
    for (double& x : v) x /= n;
  }
  return v;
}

TEST(Arrow, PrototypeIsTheTopRightSingularVectorOfBA) {
  for (unsigned seed : {1u, 2u, 3u}) {
    const LoraModule m = make_module("m", seed);
    const auto& A = m.tensors[0].values;
    const auto& B = m.tensors[1].values;
    const std::vector<float> p = top_right_singular_vector(A, B, kR, kIn, kOut);
    const std::vector<double> v = power_iteration(A, B);
    const double sign = std::inner_product(p.begin(), p.end(), v.begin(), 0.0) < 0 ? -1.0 : 1.0;
    for (int64_t i = 0; i < kIn; ++i) EXPECT_NEAR(p[i], sign * v[i], 1e-6) << seed << " " << i;
  }
}

TEST(Arrow, PrototypeOfAZeroUpdateIsZero) {
  const std::vector<float> A = random_values(kR * kIn, 4u), B(kOut * kR, 0.0f);
  for (float x : top_right_singular_vector(A, B, kR, kIn, kOut)) EXPECT_EQ(x, 0.0f);
}

// The mixture of one token, written out as PEFT's forward states it.
std::vector<double> routed_by_hand(const LoraRouter& r, const float* x) {
  const size_t e_count = r.experts.size();
  std::vector<double> sim(e_count);
  for (size_t e = 0; e < e_count; ++e) {
    double s = 0;
    for (int64_t i = 0; i < kIn; ++i) s += double(x[i]) * r.prototypes[e * kIn + i];
    sim[e] = std::fabs(s);
  }
  std::vector<size_t> order(e_count);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return sim[a] > sim[b]; });
  double z = 0;
  for (int64_t j = 0; j < r.top_k; ++j) z += std::exp(sim[order[j]] / r.temperature);
  std::vector<double> y(kOut, 0.0);
  for (int64_t j = 0; j < r.top_k; ++j) {
    const LoraDelta& d = r.experts[order[j]];
    const double c = std::exp(sim[order[j]] / r.temperature) / z;
    for (int64_t o = 0; o < kOut; ++o)
      for (int64_t k = 0; k < kR; ++k) {
        double ax = 0;
        for (int64_t i = 0; i < kIn; ++i) ax += double(d.A[k * kIn + i]) * x[i];
        y[o] += c * d.scale * d.B[o * kR + k] * ax;
      }
  }
  return y;
}

TEST(Arrow, RoutedSidePathIsThePerTokenMixture) {
  const ModuleSet tasks = make_set(5, 10);
  for (int64_t top_k : {1, 2, 5}) {
    const LoraRouterMap routers =
        arrow_router(tasks, nullptr, {.top_k = top_k, .temperature = 0.3});
    const LoraRouter& r = routers.at("enc.q");
    ASSERT_EQ(r.experts.size(), 5u);
    const int64_t rows = 9;
    const std::vector<float> x = random_values(rows * kIn, 7u);
    std::vector<float> y(rows * kOut, 1.0f);  // adds to what is there
    add_routed_lora(r, x.data(), rows, y.data());
    for (int64_t t = 0; t < rows; ++t) {
      const std::vector<double> expected = routed_by_hand(r, x.data() + t * kIn);
      for (int64_t o = 0; o < kOut; ++o)
        EXPECT_NEAR(y[t * kOut + o], 1.0 + expected[o], 1e-5) << top_k << " " << t << " " << o;
    }
  }
}

TEST(Arrow, GenKnowSubSubtractsTheGeneralMeanFactors) {
  const ModuleSet tasks = make_set(3, 10), general = make_set(2, 30);
  const LoraRouter r = arrow_router(tasks, &general, {.top_k = 2}).at("enc.q");
  for (size_t e = 0; e < 3; ++e)
    for (size_t t = 0; t < 2; ++t) {  // A, then B
      const auto& task = tasks[e].tensors[t].values;
      const auto& g0 = general[0].tensors[t].values;
      const auto& g1 = general[1].tensors[t].values;
      const auto& got = t == 0 ? r.experts[e].A : r.experts[e].B;
      for (size_t i = 0; i < task.size(); ++i)
        EXPECT_NEAR(got[i], task[i] - (g0[i] + g1[i]) / 2, 1e-6);
    }
  // The prototypes follow the subtracted factors.
  const auto& d = r.experts[1];
  const std::vector<float> p = top_right_singular_vector(d.A, d.B, kR, kIn, kOut);
  for (int64_t i = 0; i < kIn; ++i) EXPECT_EQ(r.prototypes[kIn + i], p[i]);
}

TEST(ArrowMalformed, BadOptionsAndRoutersFailCleanly) {
  const ModuleSet tasks = make_set(3, 10);
  EXPECT_THROW(arrow_router(tasks, nullptr, {.top_k = 0}), Error);
  EXPECT_THROW(arrow_router(tasks, nullptr, {.top_k = 4}), Error);
  EXPECT_THROW(arrow_router(tasks, nullptr, {.top_k = 1, .temperature = 0}), Error);
  EXPECT_THROW(arrow_router(tasks, nullptr, {.top_k = 1, .temperature = NAN}), Error);
  std::vector<LoraModule> other{make_module("wide", 5)};
  other[0].tensors[0].shape = {kR, kIn + 1};
  other[0].tensors[0].values.resize((kIn + 1) * kR);
  const ModuleSet wide = ModuleSet::from_modules(std::move(other));
  EXPECT_THROW(arrow_router(tasks, &wide, {.top_k = 1}), Error);

  Linear layer;
  layer.name = "enc.q";
  layer.in = kIn;
  layer.out = kOut;
  LoraRouterMap routers = arrow_router(tasks, nullptr, {.top_k = 2});
  EXPECT_NE(checked_router(layer, routers), nullptr);
  routers.at("enc.q").prototypes.pop_back();
  EXPECT_THROW(checked_router(layer, routers), Error);
  routers = arrow_router(tasks, nullptr, {.top_k = 2});
  routers.at("enc.q").top_k = 4;
  EXPECT_THROW(checked_router(layer, routers), Error);
  layer.in = kIn + 1;
  routers.at("enc.q").top_k = 2;
  EXPECT_THROW(checked_router(layer, routers), Error);
}

}  // namespace
}  // namespace lorahub
