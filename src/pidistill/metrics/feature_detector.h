// The feature network of the image-quality metrics: uint8 images in, pool features (Fréchet distance,
// precision/recall) and class probabilities (Inception Score) out. Inception (TorchScript) and our
// Fashion-MNIST classifier are two kinds of it; every metric sees only this interface.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>

namespace pidistill {

struct DetectorOutput {
  at::Tensor features;  // [N, D] float32
  at::Tensor probs;     // [N, K] float32, rows sum to 1 (undefined when not asked for)
};

struct FeatureDetector {
  virtual ~FeatureDetector() = default;
  virtual std::string name()
      const = 0;  // what to call its FD in reports: "FID" for Inception, "FD-FMNIST" ...
  virtual std::string file() const = 0;  // the file it was loaded from
  virtual int64_t feature_dim() const = 0;
  // images: uint8 [N, C, H, W]; C = 1 is repeated to 3 where the network wants RGB (as EDM's fid.py does).
  virtual DetectorOutput run(const at::Tensor& images, bool want_probs) = 0;
};

// EDM's / StyleGAN3's Inception-v3 detector `inception-2015-12-05.pt` (or any TorchScript file with its call:
// forward(img_uint8, return_features=..., no_output_bias=...)). Error naming the file when it is not
// TorchScript or does not take that call.
std::unique_ptr<FeatureDetector> load_torchscript_detector(const std::string& path);

// A detector file of either kind: a TorchScript zip (Inception) or a pidistill classifier (.safetensors).
// An empty path is an Error that says which file to get and where it is published.
std::unique_ptr<FeatureDetector> load_detector(const std::string& path);

// Error naming `where` unless images is uint8 [N, 1 or 3, H, W].
void check_images(const at::Tensor& images, const std::string& where);

// Where the Inception detector is published, for error messages and --help.
extern const char* kInceptionUrl;

}  // namespace pidistill
