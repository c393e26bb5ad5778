// LPIPS forward as piq 0.7.0 computes it, plus PID's resize and [-1, 1] -> [0, 1] map.
#include "pidistill/metrics/lpips.h"

#include "pidistill/nets/winograd_conv.h"
#include "pidistill/util/error.h"

#include <ATen/ATen.h>

namespace pidistill {
namespace {

// torchvision VGG16 `features`: a conv index, or a pool (-1). The 13 convs are followed by a ReLU each.
// Feature taps sit after the ReLUs of modules 3, 8, 15, 22 and 29 (relu1_2 ... relu5_3).
constexpr int kConvsPerStage[5] = {2, 2, 3, 3, 3};

// Channel unit-normalisation: f / (sqrt(sum_c f^2) + 1e-10); the epsilon goes after the sqrt, as piq.
at::Tensor normalize_channels(const at::Tensor& f) {
  return f / (at::sqrt(at::sum(f.pow(2), {1}, /*keepdim=*/true)) + 1e-10);
}

// The five normalised feature maps of x01: [N, C_l, H_l, W_l].
std::vector<at::Tensor> features(const Lpips& w, const at::Tensor& x01) {
  // ImageNet mean/std built as doubles and cast to the input dtype, as piq's default-dtype buffers are.
  auto opts = at::TensorOptions().dtype(at::kDouble);
  at::Tensor mean = at::tensor({0.485, 0.456, 0.406}, opts).view({1, 3, 1, 1}).to(x01.options());
  at::Tensor std = at::tensor({0.229, 0.224, 0.225}, opts).view({1, 3, 1, 1}).to(x01.options());
  at::Tensor x = (x01 - mean) / std;  // x: [N, 3, H, W]
  std::vector<at::Tensor> taps;
  size_t conv = 0;
  for (int stage = 0; stage < 5; ++stage) {
    // Why pool first from stage 1: torchvision's pool closes each stage; the last one (module 30) is unused.
    if (stage > 0) x = at::avg_pool2d(x, {2, 2}, {2, 2});
    for (int c = 0; c < kConvsPerStage[stage]; ++c, ++conv)
      x = at::relu(conv3x3_same(x, w.conv_weight[conv], w.conv_bias[conv]));
    taps.push_back(normalize_channels(x));
  }
  return taps;
}

// Per layer l: mean over H, W of w_l * (f_x - f_y)^2 -> [N, C_l].
std::vector<at::Tensor> layer_terms(const Lpips& lpips, const at::Tensor& x01, const at::Tensor& y01) {
  if (x01.dim() != 4 || x01.size(1) != 3 || x01.sizes() != y01.sizes())
    fail("LPIPS", "inputs must both be [N, 3, H, W], got " + c10::str(x01.sizes()) + " and " +
                      c10::str(y01.sizes()));
  if (x01.scalar_type() != y01.scalar_type() || x01.device() != y01.device())
    fail("LPIPS", "inputs differ in dtype or device");
  // piq moves the network to the input's dtype and device at every call.
  const bool same = lpips.conv_weight.at(0).scalar_type() == x01.scalar_type() &&
                    lpips.conv_weight[0].device() == x01.device();
  const Lpips cast = same ? Lpips{} : lpips.to(x01.device(), x01.scalar_type());
  const Lpips& w = same ? lpips : cast;
  auto fx = features(w, x01), fy = features(w, y01);
  std::vector<at::Tensor> terms;
  for (size_t l = 0; l < fx.size(); ++l)
    terms.push_back((at::mse_loss(fx[l], fy[l], at::Reduction::None) * w.lin[l]).mean({2, 3}));  // [N, C_l]
  return terms;
}

}  // namespace

at::Tensor Lpips::operator()(const at::Tensor& x01, const at::Tensor& y01) const {
  // Concatenate, then sum over all 1472 channels at once: the order piq sums in.
  return channel_terms(x01, y01).sum(1);  // [N]
}

at::Tensor Lpips::channel_terms(const at::Tensor& x01, const at::Tensor& y01) const {
  return at::cat(layer_terms(*this, x01, y01), 1);  // [N, 1472]
}

at::Tensor Lpips::per_layer(const at::Tensor& x01, const at::Tensor& y01) const {
  std::vector<at::Tensor> layers;
  for (const auto& t : layer_terms(*this, x01, y01)) layers.push_back(t.sum(1));
  return at::stack(layers, 1);  // [N, 5]
}

at::Tensor upsample_for_lpips(const at::Tensor& x) {
  if (x.dim() != 4) fail("LPIPS", "upsample expects [N, C, H, W], got " + c10::str(x.sizes()));
  // PID's rule looks at the width only.
  if (x.size(3) >= 256) return x;
  // No scale factors given, as F.interpolate(size=224): the kernel uses in/out as the scale.
  return at::upsample_bilinear2d(x, {224, 224}, /*align_corners=*/false, c10::nullopt, c10::nullopt);
}

at::Tensor lpips_distance(const Lpips& lpips, const at::Tensor& a, const at::Tensor& b) {
  return lpips((upsample_for_lpips(a) + 1) / 2.0, (upsample_for_lpips(b) + 1) / 2.0);
}

}  // namespace pidistill
