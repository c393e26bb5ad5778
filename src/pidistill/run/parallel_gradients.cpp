#include "pidistill/run/parallel_gradients.h"

#include "pidistill/util/error.h"

#include <torch/csrc/autograd/autograd.h>

#include <exception>
#include <thread>

namespace pidistill {

std::vector<std::vector<BatchSlice>> worker_micro_batches(const BatchSlice& slice, int64_t micro, int workers,
                                                          const std::string& micro_option) {
  if (workers < 1) fail("--workers", std::to_string(workers) + " must be >= 1");
  if (micro <= 0 && workers > 1) {
    if (slice.size() % workers != 0)
      fail("--workers", std::to_string(workers) + " workers cannot share the " + std::to_string(slice.size()) +
                            " images of this process's batch evenly; hint: a divisor of the batch");
    micro = slice.size() / workers;
  }
  const std::vector<BatchSlice> all = micro_batches(slice, micro, micro_option);
  const int64_t count = static_cast<int64_t>(all.size());
  if (count < workers)
    fail("--workers", std::to_string(workers) + " workers but only " + std::to_string(count) +
                          " micro-batches of " + std::to_string(micro) + " images; hint: a smaller " + micro_option +
                          " or fewer workers");
  std::vector<std::vector<BatchSlice>> parts(static_cast<size_t>(workers));
  for (int k = 0; k < workers; ++k)
    for (int64_t m = k * count / workers; m < (k + 1) * count / workers; ++m) parts[k].push_back(all[m]);
  return parts;
}

namespace {

void add_into(std::vector<at::Tensor>& sum, const std::vector<at::Tensor>& more) {
  for (size_t i = 0; i < more.size(); ++i) {
    if (!more[i].defined()) continue;
    if (sum[i].defined()) sum[i].add_(more[i]);
    else sum[i] = more[i];
  }
}

}  // namespace

void accumulate_gradients(const std::vector<at::Tensor>& params, const std::vector<std::vector<BatchSlice>>& parts,
                          const std::function<at::Tensor(const BatchSlice& micro, int worker)>& loss_of) {
  if (parts.size() == 1) {
    for (const BatchSlice& mb : parts[0]) loss_of(mb, 0).backward();
    return;
  }
  const size_t workers = parts.size();
  std::vector<std::vector<at::Tensor>> sums(workers, std::vector<at::Tensor>(params.size()));
  std::vector<std::exception_ptr> errors(workers);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < workers; ++k)
    threads.emplace_back([&, k] {
      try {
        for (const BatchSlice& mb : parts[k]) {
          const at::Tensor loss = loss_of(mb, static_cast<int>(k));
          // grad(), not backward(): the workers' graphs share the parameters, whose .grad must not be raced on.
          add_into(sums[k], torch::autograd::grad({loss}, params, {}, /*retain_graph=*/false,
                                                  /*create_graph=*/false, /*allow_unused=*/true));
        }
      } catch (...) {
        errors[k] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  for (size_t k = 1; k < workers; ++k) add_into(sums[0], sums[k]);
  for (size_t i = 0; i < params.size(); ++i) {
    if (!sums[0][i].defined()) continue;
    at::Tensor p = params[i];
    if (p.grad().defined()) p.mutable_grad().add_(sums[0][i]);
    else p.mutable_grad() = sums[0][i];
  }
}

}  // namespace pidistill
