// Fréchet distance via symmetric eigen-decompositions, float64 feature statistics, and EDM's npz stats files.
#include "pidistill/metrics/frechet.h"

#include "pidistill/io/npz.h"
#include "pidistill/util/error.h"

#include <ATen/ATen.h>

namespace pidistill {

namespace {

const char* kWhere = "StatsAccumulator";

std::string shape_str(const at::Tensor& t) {
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) out += (i ? ", " : "") + std::to_string(t.size(i));
  return out + "]";
}

// mu [D] and sigma [D, D] of one side; `what` names the side in the error.
void check_stats(const std::string& where, const std::string& what, const FeatureStats& s) {
  if (!s.mu.defined() || !s.sigma.defined() || s.mu.dim() != 1 || s.sigma.dim() != 2 ||
      s.sigma.size(0) != s.mu.size(0) || s.sigma.size(1) != s.mu.size(0))
    fail(where, what + " statistics: mu " + (s.mu.defined() ? shape_str(s.mu) : "undefined") + ", sigma " +
                    (s.sigma.defined() ? shape_str(s.sigma) : "undefined") + " (want mu [D], sigma [D, D])");
}

at::Tensor cpu_double(const at::Tensor& t) { return t.to(at::kCPU, at::kDouble).contiguous(); }

}  // namespace

StatsAccumulator::StatsAccumulator(int64_t dim) : dim_(dim) {
  if (dim <= 0) fail(kWhere, "feature dimension " + std::to_string(dim) + " (must be positive)");
  // Why CPU float64: D^2 products per sample are cheap next to the detector, and MPS has no float64.
  auto opts = at::TensorOptions().dtype(at::kDouble);
  sum_ = at::zeros({dim}, opts);
  sum_outer_ = at::zeros({dim, dim}, opts);
}

void StatsAccumulator::add(const at::Tensor& features) {
  if (features.dim() != 2 || features.size(1) != dim_)
    fail(kWhere, "features of shape " + shape_str(features) + ", expected [N, " + std::to_string(dim_) + "]");
  if (!at::isFloatingType(features.scalar_type()))
    fail(kWhere,
         "features of dtype " + std::string(c10::toString(features.scalar_type())) + ", expected floating");
  const at::Tensor x = cpu_double(features);  // x: [N, D]
  sum_ += x.sum(0);
  sum_outer_ += at::matmul(x.t(), x);  // [D, D]
  count_ += x.size(0);
}

FeatureStats StatsAccumulator::stats() const {
  if (count_ < 2) fail(kWhere, std::to_string(count_) + " samples; a covariance needs at least two");
  const double n = static_cast<double>(count_);
  FeatureStats s;
  s.mu = sum_ / n;                                                 // [D]
  s.sigma = (sum_outer_ - n * at::outer(s.mu, s.mu)) / (n - 1.0);  // [D, D]
  s.count = count_;
  return s;
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b, const std::string& where) {
  check_stats(where, "first", a);
  check_stats(where, "second", b);
  if (a.mu.size(0) != b.mu.size(0))
    fail(where, "feature dimensions differ: " + std::to_string(a.mu.size(0)) + " vs " +
                    std::to_string(b.mu.size(0)) + " (statistics of different detectors?)");
  const at::Tensor mu_a = cpu_double(a.mu), mu_b = cpu_double(b.mu);
  const at::Tensor sigma_a = cpu_double(a.sigma), sigma_b = cpu_double(b.sigma);
  const at::Tensor diff = mu_a - mu_b;  // [D]
  // tr sqrtm(sigma_a sigma_b) = tr sqrtm(sqrt_a sigma_b sqrt_a): the latter is symmetric PSD, so eigvalsh
  // applies.
  double tr_sqrt = 0;
  try {
    auto [w, v] = at::linalg_eigh(sigma_a);                                  // w: [D], v: [D, D]
    const at::Tensor sqrt_a = at::matmul(v * w.clamp_min(0).sqrt(), v.t());  // [D, D]
    at::Tensor m = at::matmul(at::matmul(sqrt_a, sigma_b), sqrt_a);          // [D, D]
    // Why: rounding leaves m slightly asymmetric; eigvalsh would read only one triangle.
    m = (m + m.t()) / 2;
    tr_sqrt = at::linalg_eigvalsh(m).clamp_min(0).sqrt().sum().item<double>();
  } catch (const c10::Error& e) {
    // Why: LAPACK gives up on matrices no detector produces (values near the double range); its message
    // names neither file.
    fail(where, "the covariances cannot be decomposed (" +
                    std::string(e.what_without_backtrace()).substr(0, 80) + "); damaged statistics?");
  }
  return diff.dot(diff).item<double>() + sigma_a.trace().item<double>() + sigma_b.trace().item<double>() -
         2.0 * tr_sqrt;
}

FeatureStats read_stats_npz(const std::string& path) { return stats_from_arrays(read_npz(path), path); }

FeatureStats stats_from_arrays(const NamedTensors& arrays, const std::string& path) {
  auto find = [&](const std::string& name) -> const at::Tensor* {
    for (const auto& [n, t] : arrays)
      if (n == name) return &t;
    return nullptr;
  };
  const at::Tensor* mu = find("mu");
  const at::Tensor* sigma = find("sigma");
  if (mu == nullptr || sigma == nullptr)
    fail(path, std::string("no array '") + (mu == nullptr ? "mu" : "sigma") +
                   "' (reference statistics hold mu and sigma, as EDM's `fid.py ref` writes them)");
  if (mu->dim() != 1 || !at::isFloatingType(mu->scalar_type()))
    fail(path, "array 'mu': shape " + shape_str(*mu) + " of " + c10::toString(mu->scalar_type()) +
                   ", expected 1-D floating [D]");
  const int64_t d = mu->size(0);
  if (sigma->dim() != 2 || sigma->size(0) != d || sigma->size(1) != d ||
      !at::isFloatingType(sigma->scalar_type()))
    fail(path, "array 'sigma': shape " + shape_str(*sigma) + " of " + c10::toString(sigma->scalar_type()) +
                   ", expected floating [" + std::to_string(d) + ", " + std::to_string(d) + "] to match mu");
  FeatureStats s;
  s.mu = cpu_double(*mu);
  s.sigma = cpu_double(*sigma);
  // Why here: the matrix square root of the Frechet distance fails on NaN or inf with LibTorch's own
  // anonymous message ("linalg.eigh: The algorithm failed to converge").
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"mu", s.mu}, {"sigma", s.sigma}})
    if (!at::isfinite(t).all().item<bool>()) fail(path, std::string("array '") + name + "' holds NaN or inf");
  if (const at::Tensor* count = find("count")) {
    if (count->numel() != 1 || at::isFloatingType(count->scalar_type()) || count->scalar_type() == at::kBool)
      fail(path, "array 'count': shape " + shape_str(*count) + " of " + c10::toString(count->scalar_type()) +
                     ", expected an integer scalar");
    s.count = count->item<int64_t>();
    if (s.count < 0) fail(path, "array 'count' is negative (" + std::to_string(s.count) + ")");
  }
  return s;
}

NamedTensors stats_to_arrays(const FeatureStats& stats, const std::string& path) {
  check_stats(path, "the", stats);
  NamedTensors arrays = {{"mu", cpu_double(stats.mu)}, {"sigma", cpu_double(stats.sigma)}};
  if (stats.count > 0) arrays.emplace_back("count", at::scalar_tensor(stats.count, at::kLong));  // 0-d int64
  return arrays;
}

void write_stats_npz(const std::string& path, const FeatureStats& stats) {
  write_npz(path, stats_to_arrays(stats, path));
}

}  // namespace pidistill
