// Mixed precision as torch.autocast does it: inside an AutocastGuard, convolutions and matrix products run in
// bf16 (oneDNN's AVX512-BF16 / AMX kernels on CPU, tensor cores on CUDA) or fp16 (CUDA) while weights and the
// rest stay fp32.
#pragma once
namespace pidistill {

enum class Precision { FP32, BF16, FP16 };

// Turns autocast on (BF16, FP16) or leaves it as it is (FP32) for CPU or CUDA tensors until the guard ends; restores the
// previous state and drops autocast's cast cache when the outermost guard ends.
class AutocastGuard {
 public:
  AutocastGuard(Precision precision, bool cuda);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false, cuda_ = false, was_enabled_ = false;
  int was_dtype_ = 0;  // at::ScalarType, kept as int so that this header needs no ATen
};

}  // namespace pidistill
