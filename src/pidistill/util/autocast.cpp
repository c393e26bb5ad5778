#include "pidistill/util/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace pidistill {

namespace {
// LibTorch 2.x names autocast's state per device type; 1.13 has one function pair per device.
#if TORCH_VERSION_MAJOR >= 2
bool enabled(bool cuda) { return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU); }
void set_enabled(bool cuda, bool on) { at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on); }
at::ScalarType dtype(bool cuda) { return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU); }
void set_dtype(bool cuda, at::ScalarType t) { at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, t); }
#else
bool enabled(bool cuda) { return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled(); }
void set_enabled(bool cuda, bool on) { cuda ? at::autocast::set_enabled(on) : at::autocast::set_cpu_enabled(on); }
at::ScalarType dtype(bool cuda) {
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void set_dtype(bool cuda, at::ScalarType t) {
  cuda ? at::autocast::set_autocast_gpu_dtype(t) : at::autocast::set_autocast_cpu_dtype(t);
}
#endif
}  // namespace

AutocastGuard::AutocastGuard(Precision precision, bool cuda) : cuda_(cuda) {
  if (precision == Precision::FP32) return;
  active_ = true;
  was_enabled_ = enabled(cuda);
  was_dtype_ = static_cast<int>(dtype(cuda));
  set_enabled(cuda, true);
  set_dtype(cuda, precision == Precision::FP16 ? at::kHalf : at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_enabled(cuda_, was_enabled_);
  set_dtype(cuda_, static_cast<at::ScalarType>(was_dtype_));
}

}  // namespace pidistill
