// Gradients computed by several worker threads at once: the micro-batches each worker takes, the sum equal to one
// backward pass over the whole batch, the same bits on every run, and a worker's error reaching the caller.
#include "pidistill/run/parallel_gradients.h"
#include "pidistill/util/error.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

using namespace pidistill;

namespace {

std::vector<int64_t> sizes(const std::vector<std::vector<BatchSlice>>& parts) {
  std::vector<int64_t> out;
  for (const auto& part : parts) {
    int64_t n = 0;
    for (const auto& mb : part) n += mb.size();
    out.push_back(n);
  }
  return out;
}

// A two-layer network's gradient for images [begin, end) of x, through one backward or several workers.
struct Tiny {
  at::Tensor w1 = at::randn({16, 8}, at::TensorOptions().dtype(at::kDouble)).set_requires_grad(true);
  at::Tensor w2 = at::randn({8, 1}, at::TensorOptions().dtype(at::kDouble)).set_requires_grad(true);
  at::Tensor x = at::randn({12, 16}, at::TensorOptions().dtype(at::kDouble));
  at::Tensor loss(const BatchSlice& s) const {
    return at::tanh(x.narrow(0, s.begin, s.size()).mm(w1)).mm(w2).square().sum() / 12.0;
  }
  std::vector<at::Tensor> grads(int64_t micro, int workers) {
    for (auto* p : {&w1, &w2}) p->mutable_grad() = at::Tensor();
    accumulate_gradients({w1, w2}, worker_micro_batches({0, 12}, micro, workers),
                         [&](const BatchSlice& mb, int) { return loss(mb); });
    return {w1.grad().clone(), w2.grad().clone()};
  }
};

}  // namespace

TEST(ParallelGradients, WorkersTakeContiguousGroupsOfMicroBatches) {
  EXPECT_EQ(sizes(worker_micro_batches({0, 12}, 0, 1)), (std::vector<int64_t>{12}));
  EXPECT_EQ(sizes(worker_micro_batches({0, 12}, 0, 3)), (std::vector<int64_t>{4, 4, 4}));
  EXPECT_EQ(sizes(worker_micro_batches({0, 12}, 2, 4)), (std::vector<int64_t>{2, 4, 2, 4}));
  auto parts = worker_micro_batches({4, 8}, 1, 2);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].front().begin, 4);
  EXPECT_EQ(parts[1].back().end, 8);
  EXPECT_THROW(worker_micro_batches({0, 12}, 0, 5), Error);  // 5 does not divide 12
  EXPECT_THROW(worker_micro_batches({0, 12}, 6, 3), Error);  // 2 micro-batches for 3 workers
  EXPECT_THROW(worker_micro_batches({0, 12}, 0, 0), Error);
}

TEST(ParallelGradients, SumEqualsOneBackwardAndIsTheSameEveryRun) {
  at::manual_seed(3);
  Tiny tiny;
  const auto whole = tiny.grads(0, 1);
  for (auto [micro, workers] : {std::pair<int64_t, int>{0, 2}, {0, 4}, {1, 3}, {3, 2}}) {
    const auto g = tiny.grads(micro, workers);
    for (size_t i = 0; i < g.size(); ++i)
      EXPECT_LE((g[i] - whole[i]).abs().max().item<double>(), 1e-12 * whole[i].abs().max().item<double>())
          << micro << " x " << workers;
    const auto again = tiny.grads(micro, workers);
    for (size_t i = 0; i < g.size(); ++i) EXPECT_TRUE(g[i].equal(again[i])) << micro << " x " << workers;
  }
  // Gradients add to what .grad already holds, as backward() does.
  tiny.w1.mutable_grad() = at::ones_like(tiny.w1);
  tiny.w2.mutable_grad() = at::Tensor();
  accumulate_gradients({tiny.w1, tiny.w2}, worker_micro_batches({0, 12}, 0, 2),
                       [&](const BatchSlice& mb, int) { return tiny.loss(mb); });
  EXPECT_LE((tiny.w1.grad() - 1 - whole[0]).abs().max().item<double>(), 1e-12);
}

TEST(ParallelGradients, AWorkersErrorIsRethrownAfterAllStopped) {
  Tiny tiny;
  std::atomic<int> finished{0};
  EXPECT_THROW(accumulate_gradients({tiny.w1, tiny.w2}, worker_micro_batches({0, 12}, 0, 3),
                                    [&](const BatchSlice& mb, int k) {
                                      if (k == 1) throw std::runtime_error("worker 1 failed");
                                      auto loss = tiny.loss(mb);
                                      ++finished;
                                      return loss;
                                    }),
               std::runtime_error);
  EXPECT_EQ(finished.load(), 2);
}
