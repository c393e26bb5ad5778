// The Inception detector as EDM and StyleGAN3 call it: a TorchScript module taking uint8 [N, 3, H, W] and
// keyword flags; return_features=True gives the 2048 pool3 features, no_output_bias=True the 1008 logits'
// softmax without the output bias (StyleGAN3's Inception Score setting).
#include "pidistill/metrics/classifier.h"
#include "pidistill/metrics/feature_detector.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"

#include <ATen/ATen.h>
#include <torch/script.h>

#include <fstream>

namespace pidistill {

const char* kInceptionUrl =
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt";

namespace {

class TorchScriptDetector : public FeatureDetector {
 public:
  explicit TorchScriptDetector(std::string path) : path_(std::move(path)) {
    try {
      module_ = torch::jit::load(path_, at::kCPU);
    } catch (const std::exception& e) {
      std::string what = e.what();
      fail(path_, "not a TorchScript detector (" + what.substr(0, what.find('\n')) +
                      "); hint: --detector takes inception-2015-12-05.pt or a pidistill classifier file");
    }
    module_.eval();
    if (!module_.find_method("forward")) fail(path_, "TorchScript module has no forward()");
    // One probe image fixes the feature size and proves the call works before any long run.
    at::Tensor probe = at::zeros({1, 3, 32, 32}, at::kByte);
    dim_ = call(probe, "return_features").size(1);
  }

  std::string name() const override { return "FID"; }
  std::string file() const override { return path_; }
  int64_t feature_dim() const override { return dim_; }

  DetectorOutput run(const at::Tensor& images, bool want_probs) override {
    check_images(images, path_);
    at::Tensor rgb = images.size(1) == 1 ? images.repeat({1, 3, 1, 1}) : images;  // [N, 3, H, W] uint8
    DetectorOutput out;
    out.features = call(rgb, "return_features");
    if (want_probs) out.probs = call(rgb, "no_output_bias");
    return out;
  }

 private:
  at::Tensor call(const at::Tensor& images, const std::string& flag) {
    torch::NoGradGuard no_grad;
    c10::IValue result;
    try {
      result = module_.get_method("forward")({images.contiguous()}, {{flag, true}});
    } catch (const std::exception& e) {
      std::string what = e.what();
      fail(path_, "forward(img, " + flag + "=True) failed: " + what.substr(0, what.find('\n')) +
                      "; hint: the detector must take EDM's call (inception-2015-12-05.pt)");
    }
    if (!result.isTensor()) fail(path_, "forward(img, " + flag + "=True) did not return a tensor");
    at::Tensor t = result.toTensor();
    if (t.dim() != 2 || t.size(0) != images.size(0))
      fail(path_, "forward(img, " + flag + "=True) returned shape " + std::to_string(t.dim()) +
                      "-D, expected [N, D] with N = " + std::to_string(images.size(0)));
    return t.to(at::kFloat);
  }

  std::string path_;
  torch::jit::Module module_;
  int64_t dim_ = 0;
};

bool starts_with_zip_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K';
}

}  // namespace

void check_images(const at::Tensor& images, const std::string& where) {
  if (images.dim() != 4 || (images.size(1) != 1 && images.size(1) != 3) || images.scalar_type() != at::kByte)
    fail(where, "detector input must be uint8 images [N, 1 or 3, H, W]");
}

std::unique_ptr<FeatureDetector> load_torchscript_detector(const std::string& path) {
  return std::make_unique<TorchScriptDetector>(path);
}

std::unique_ptr<FeatureDetector> load_detector(const std::string& path) {
  if (path.empty())
    fail("--detector",
         std::string("no feature network given; hint: download inception-2015-12-05.pt (the TorchScript "
                     "Inception-v3 of EDM, StyleGAN2-ADA/3 and clean-fid) from ") +
             kInceptionUrl + " and pass --detector FILE, or use --features fmnist for Fashion-MNIST");
  require_regular_file(path);  // torch::jit::load would block on a FIFO
  if (starts_with_zip_magic(path)) return load_torchscript_detector(path);
  return load_classifier_detector(path);
}

}  // namespace pidistill
