#include "pidistill/nets/layers.h"

#include "pidistill/nets/winograd_conv.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#include <cmath>

namespace pidistill {

namespace {
thread_local bool meta_parameters = false;
}  // namespace

MetaParameters::MetaParameters() : previous_(meta_parameters) { meta_parameters = true; }
MetaParameters::~MetaParameters() { meta_parameters = previous_; }

at::TensorOptions parameter_options() {
  return meta_parameters ? at::TensorOptions().device(at::kMeta) : at::TensorOptions();
}

at::Tensor weight_init(at::IntArrayRef shape, const std::string& mode, int64_t fan_in, int64_t fan_out) {
  // Same draws and arithmetic order as EDM, so a seeded init reproduces the Python one.
  const at::TensorOptions o = parameter_options();
  if (mode == "xavier_uniform") return std::sqrt(6.0 / double(fan_in + fan_out)) * (at::rand(shape, o) * 2 - 1);
  if (mode == "xavier_normal") return std::sqrt(2.0 / double(fan_in + fan_out)) * at::randn(shape, o);
  if (mode == "kaiming_uniform") return std::sqrt(3.0 / double(fan_in)) * (at::rand(shape, o) * 2 - 1);
  if (mode == "kaiming_normal") return std::sqrt(1.0 / double(fan_in)) * at::randn(shape, o);
  fail("", "unknown init_mode '" + mode + "' (expected xavier_uniform, xavier_normal, kaiming_uniform or kaiming_normal)");
}


at::Tensor dropout(const at::Tensor& x, double p, bool training, const c10::optional<at::Generator>& generator) {
  if (!training || p == 0) return x;
  if (p >= 1) return x * 0;
  auto mask = at::empty_like(x).bernoulli_(1 - p, generator);  // mask: [same as x]
  mask.div_(1 - p);
  return x * mask;
}

Linear::Linear(int64_t in, int64_t out, bool has_bias, const InitOptions& init) : in_features(in), out_features(out) {
  weight = register_parameter("weight", weight_init({out, in}, init.init_mode, in, out) * init.init_weight);
  if (has_bias) bias = register_parameter("bias", weight_init({out}, init.init_mode, in, out) * init.init_bias);
}

at::Tensor Linear::forward(const at::Tensor& x) {
  auto y = at::matmul(x, weight.to(x.scalar_type()).t());  // y: [N, out]
  if (bias.defined()) y = y + bias.to(x.scalar_type());
  return y;
}

Conv2d::Conv2d(int64_t in, int64_t out, const Conv2dOptions& opt) : in_channels(in), out_channels(out), options(opt) {
  if (opt.up && opt.down) fail("", "Conv2d cannot be both up and down");
  int64_t k = opt.kernel;
  if (k) {
    const auto& init = opt.init;
    weight = register_parameter(
        "weight", weight_init({out, in, k, k}, init.init_mode, in * k * k, out * k * k) * init.init_weight);
    if (opt.bias)
      bias = register_parameter("bias", weight_init({out}, init.init_mode, in * k * k, out * k * k) * init.init_bias);
  }
  if (opt.up || opt.down) {
    if (opt.resample_filter.empty()) fail("", "resample_filter is empty");
    std::vector<float> taps(opt.resample_filter.begin(), opt.resample_filter.end());
    auto f = at::tensor(at::ArrayRef<float>(taps));  // f: [K]
    f = at::outer(f, f).unsqueeze(0).unsqueeze(1) / f.sum().square();  // f: [1, 1, K, K]
    resample_filter = register_buffer("resample_filter", f);
  }
}

namespace {
// Square stride/padding as explicit IntArrayRefs: a bare 0 would also match conv2d's string-padding overload.
at::Tensor conv(const at::Tensor& x, const at::Tensor& w, int64_t stride, int64_t pad, int64_t groups = 1) {
  if (stride == 1 && pad == 1 && groups == 1 && w.size(-1) == 3) return conv3x3_same(x, w);
  std::vector<int64_t> s{stride, stride}, p{pad, pad}, d{1, 1};
  return at::conv2d(x, w, at::Tensor(), at::IntArrayRef(s), at::IntArrayRef(p), at::IntArrayRef(d), groups);
}
at::Tensor conv_transpose(const at::Tensor& x, const at::Tensor& w, int64_t stride, int64_t pad, int64_t groups) {
  std::vector<int64_t> s{stride, stride}, p{pad, pad}, op{0, 0}, d{1, 1};
  return at::conv_transpose2d(x, w, at::Tensor(), at::IntArrayRef(s), at::IntArrayRef(p), at::IntArrayRef(op), groups,
                              at::IntArrayRef(d));
}
}  // namespace

at::Tensor Conv2d::forward(const at::Tensor& x_in) {
  auto dt = x_in.scalar_type();
  at::Tensor w = weight.defined() ? weight.to(dt) : at::Tensor();
  at::Tensor b = bias.defined() ? bias.to(dt) : at::Tensor();
  at::Tensor f = resample_filter.defined() ? resample_filter.to(dt) : at::Tensor();
  int64_t w_pad = w.defined() ? w.size(-1) / 2 : 0;
  int64_t f_pad = f.defined() ? (f.size(-1) - 1) / 2 : 0;
  at::Tensor x = x_in;
  if (options.fused_resample && options.up && w.defined()) {
    x = conv_transpose(x, f.mul(4).repeat({in_channels, 1, 1, 1}), 2, std::max(f_pad - w_pad, int64_t(0)), in_channels);
    x = conv(x, w, 1, std::max(w_pad - f_pad, int64_t(0)));
  } else if (options.fused_resample && options.down && w.defined()) {
    x = conv(x, w, 1, w_pad + f_pad);
    x = conv(x, f.repeat({out_channels, 1, 1, 1}), 2, 0, out_channels);
  } else {
    if (options.up)
      x = conv_transpose(x, f.mul(4).repeat({in_channels, 1, 1, 1}), 2, f_pad, in_channels);
    if (options.down) x = conv(x, f.repeat({in_channels, 1, 1, 1}), 2, f_pad, in_channels);
    if (w.defined()) x = conv(x, w, 1, w_pad);
  }
  // Why: EDM adds the bias after the convolution, not inside it; kept for float32 bit-closeness.
  if (b.defined()) x = x + b.reshape({1, -1, 1, 1});
  return x;
}

GroupNorm::GroupNorm(int64_t num_channels, double eps_, int64_t groups, int64_t min_channels_per_group)
    : num_groups(std::min(groups, num_channels / min_channels_per_group)), eps(eps_) {
  if (num_groups < 1) fail("", "GroupNorm needs at least " + std::to_string(min_channels_per_group) + " channels");
  weight = register_parameter("weight", at::ones({num_channels}, parameter_options()));
  bias = register_parameter("bias", at::zeros({num_channels}, parameter_options()));
}

at::Tensor GroupNorm::forward(const at::Tensor& x) {
  return at::group_norm(x, num_groups, weight.to(x.scalar_type()), bias.to(x.scalar_type()), eps);
}

}  // namespace pidistill
