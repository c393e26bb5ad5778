// Where LPIPS weights come from: real files (torchvision VGG16 + piq's linear weights, combined or apart)
// or the golden README's synthetic rule, regenerated bit-exactly.
#include "pidistill/io/torch_pickle.h"
#include "pidistill/metrics/lpips.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"

#include <sys/stat.h>

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>

namespace pidistill {
namespace {

// torchvision `features` indices of the 13 convolutions and their channel counts.
constexpr int kConvIndex[13] = {0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28};
constexpr int kConvIn[13] = {3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512};
constexpr int kConvOut[13] = {64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512};
constexpr int kLinChannels[5] = {64, 128, 256, 512, 512};

std::string conv_key(int c, const char* what) {
  return "features." + std::to_string(kConvIndex[c]) + "." + what;
}

NamedTensors read_any(const std::string& path) {
  // Why stat first: opening a FIFO blocks until a writer comes; require_regular_file names what it is instead.
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) require_regular_file(path);
  if (!std::ifstream(path).good()) fail(path, "cannot open LPIPS weights file. " + lpips_weights_hint());
  if (is_zip_file(path)) return read_torch_checkpoint(path);
  return read_safetensors(path).tensors;
}

const at::Tensor* find(const std::map<std::string, at::Tensor>& m, std::initializer_list<std::string> keys) {
  for (const auto& k : keys) {
    auto it = m.find(k);
    if (it != m.end()) return &it->second;
  }
  return nullptr;
}

void take_vgg(Lpips& out, const std::map<std::string, at::Tensor>& m, const std::string& path) {
  for (int c = 0; c < 13; ++c) {
    const at::Tensor* w = find(m, {conv_key(c, "weight")});
    const at::Tensor* b = find(m, {conv_key(c, "bias")});
    if (!w || !b) fail(path, "no VGG16 tensor '" + conv_key(c, w ? "bias" : "weight") + "'. " + lpips_weights_hint());
    if (w->sizes() != at::IntArrayRef{kConvOut[c], kConvIn[c], 3, 3} || b->sizes() != at::IntArrayRef{kConvOut[c]})
      fail(path, "'" + conv_key(c, "weight") + "' has shape " + c10::str(w->sizes()) + " (bias " +
                     c10::str(b->sizes()) + "), VGG16 needs [" + std::to_string(kConvOut[c]) + ", " +
                     std::to_string(kConvIn[c]) + ", 3, 3]: not torchvision's vgg16?");
    out.conv_weight.push_back(w->to(at::kFloat).contiguous());
    out.conv_bias.push_back(b->to(at::kFloat).contiguous());
  }
}

void take_lin(Lpips& out, const std::map<std::string, at::Tensor>& m, const std::string& path) {
  for (int l = 0; l < 5; ++l) {
    const std::string L = std::to_string(l);
    // Our combined name, piq's list (read as "0".."4"), or the original LPIPS package's names.
    const at::Tensor* w = find(m, {"lpips_lin." + L, L, "lin" + L + ".model.1.weight", "lin" + L + ".weight"});
    if (!w) fail(path, "no LPIPS linear weight 'lpips_lin." + L + "'. " + lpips_weights_hint());
    if (w->numel() != kLinChannels[l])
      fail(path, "LPIPS linear weight " + L + " has " + std::to_string(w->numel()) + " values, expected " +
                     std::to_string(kLinChannels[l]));
    out.lin.push_back(w->to(at::kFloat).reshape({1, kLinChannels[l], 1, 1}).contiguous());
  }
}

std::map<std::string, at::Tensor> as_map(const NamedTensors& t) { return {t.begin(), t.end()}; }

// The golden README's rule (5.2): fmix32 of k*2654435761 + (i+1)*1013904223, u = h / 2^32 in [0, 1).
at::Tensor synthetic_tensor(int i, at::IntArrayRef shape, double lo_scale, bool uniform_pm) {
  at::Tensor t = at::empty(shape, at::kFloat);
  float* p = t.data_ptr<float>();
  const uint32_t salt = static_cast<uint32_t>(i + 1) * 1013904223u;
  for (int64_t k = 0; k < t.numel(); ++k) {
    uint32_t h = static_cast<uint32_t>(k) * 2654435761u + salt;
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    const double u = h / 4294967296.0;
    p[k] = static_cast<float>(uniform_pm ? (2 * u - 1) * lo_scale : lo_scale * u);
  }
  return t;
}

}  // namespace

std::string lpips_weights_hint() {
  return "LPIPS needs torchvision's VGG16 ImageNet weights (vgg16-397923af.pth, IMAGENET1K_V1) and piq's "
         "lpips_weights.pt (github.com/photosynthesis-team/photosynthesis.metrics/releases/download/v0.4.0/"
         "lpips_weights.pt); combine them with `python3 scripts/convert_lpips_weights.py --vgg vgg16-397923af.pth "
         "--lin lpips_weights.pt --out lpips_vgg16.safetensors` and pass --lpips-weights lpips_vgg16.safetensors";
}

Lpips Lpips::load(const std::string& path) {
  auto m = as_map(read_any(path));
  Lpips out;
  take_vgg(out, m, path);
  take_lin(out, m, path);
  return out;
}

Lpips Lpips::load(const std::string& vgg_path, const std::string& lin_path) {
  Lpips out;
  take_vgg(out, as_map(read_any(vgg_path)), vgg_path);
  take_lin(out, as_map(read_any(lin_path)), lin_path);
  return out;
}

Lpips Lpips::synthetic() {
  Lpips out;
  int i = 0;
  for (int c = 0; c < 13; ++c) {
    out.conv_weight.push_back(synthetic_tensor(i++, {kConvOut[c], kConvIn[c], 3, 3},
                                               std::sqrt(6.0 / (9.0 * kConvIn[c])), /*uniform_pm=*/true));
    out.conv_bias.push_back(synthetic_tensor(i++, {kConvOut[c]}, 0.1, /*uniform_pm=*/true));
  }
  for (int l = 0; l < 5; ++l) out.lin.push_back(synthetic_tensor(i++, {1, kLinChannels[l], 1, 1}, 0.2, false));
  return out;
}

NamedTensors Lpips::named_tensors() const {
  NamedTensors out;
  for (size_t c = 0; c < conv_weight.size(); ++c) {
    out.emplace_back(conv_key(static_cast<int>(c), "weight"), conv_weight[c]);
    out.emplace_back(conv_key(static_cast<int>(c), "bias"), conv_bias[c]);
  }
  for (size_t l = 0; l < lin.size(); ++l) out.emplace_back("lpips_lin." + std::to_string(l), lin[l]);
  return out;
}

Lpips Lpips::to(at::Device device, at::ScalarType dtype) const {
  Lpips out;
  auto opts = at::TensorOptions().device(device).dtype(dtype);
  for (const auto& t : conv_weight) out.conv_weight.push_back(t.to(opts));
  for (const auto& t : conv_bias) out.conv_bias.push_back(t.to(opts));
  for (const auto& t : lin) out.lin.push_back(t.to(opts));
  return out;
}

}  // namespace pidistill
