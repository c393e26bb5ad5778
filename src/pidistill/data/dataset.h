// A training set held in memory as uint8 images [N, C, H, W] (the datasets here are small), with optional labels.
// Readers for each file format return one; open_dataset picks the reader from what the path holds.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace pidistill {

struct DatasetOptions {
  int pad_to = 0;              // 0 = keep; e.g. 32 pads 28x28 MNIST with black (pixel 0) to 32x32, centred
  std::string split = "train";  // IDX: train-* or t10k-*; CIFAR-10: data_batch_* or test_batch ("test")
  bool use_labels = true;      // false drops labels even when the files have them (unconditional training)
};

class Dataset {
 public:
  Dataset() = default;
  // images: uint8 [N, C, H, W]; labels: int64 [N] in [0, label_dim) or undefined. `source` names errors.
  Dataset(at::Tensor images, at::Tensor labels, int64_t label_dim, std::string source);

  int64_t size() const { return images_.size(0); }
  int64_t resolution() const { return images_.size(2); }
  int64_t channels() const { return images_.size(1); }
  bool has_labels() const { return labels_.defined(); }
  int64_t label_dim() const { return has_labels() ? label_dim_ : 0; }
  const std::string& source() const { return source_; }

  at::Tensor images(const at::Tensor& indices) const;  // float [B, C, H, W] in [-1, 1]: x / 127.5 - 1
  at::Tensor labels(const at::Tensor& indices) const;  // one-hot float [B, label_dim]; Error if no labels
  const at::Tensor& raw_images() const { return images_; }  // uint8 [N, C, H, W]
  const at::Tensor& raw_labels() const { return labels_; }  // int64 [N] or undefined

  // Zero-pads every image to pad_to x pad_to (black), centred; Error if pad_to is smaller than the images.
  void pad_to(int pad_to);
  void drop_labels() { labels_ = at::Tensor(); }

 private:
  at::Tensor images_;  // uint8 [N, C, H, W]
  at::Tensor labels_;  // int64 [N]
  int64_t label_dim_ = 0;
  std::string source_;
};

// path: an IDX file or folder (MNIST/Fashion-MNIST, .gz or raw), CIFAR-10 binary batches (a .bin or a folder),
// a folder of PNG/JPEG images, or EDM's dataset layout (folder or .zip with dataset.json). Error naming the path.
Dataset open_dataset(const std::string& path, const DatasetOptions& options = {});

}  // namespace pidistill
