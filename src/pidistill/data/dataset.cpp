// Dataset: in-memory uint8 storage, the [-1, 1] float view EDM trains on, and one-hot labels.
#include "pidistill/data/dataset.h"

#include <ATen/ATen.h>

#include <utility>

#include "pidistill/util/error.h"

namespace pidistill {

Dataset::Dataset(at::Tensor images, at::Tensor labels, int64_t label_dim, std::string source)
    : images_(std::move(images)), labels_(std::move(labels)), label_dim_(label_dim), source_(std::move(source)) {
  if (!images_.defined() || images_.dim() != 4 || images_.scalar_type() != at::kByte)
    fail(source_, "dataset images must be uint8 [N, C, H, W]");
  if (images_.size(0) == 0) fail(source_, "the dataset holds no images");
  if (images_.size(2) != images_.size(3))
    fail(source_, "images are " + std::to_string(images_.size(2)) + "x" + std::to_string(images_.size(3)) +
                      "; training needs square images (hint: crop or resize them first)");
  if (labels_.defined()) {
    if (labels_.dim() != 1 || labels_.size(0) != images_.size(0))
      fail(source_, std::to_string(labels_.numel()) + " labels for " + std::to_string(images_.size(0)) + " images");
    labels_ = labels_.to(at::kLong);
    int64_t lo = labels_.min().item<int64_t>(), hi = labels_.max().item<int64_t>();
    if (lo < 0 || hi >= label_dim_)
      fail(source_, "label " + std::to_string(lo < 0 ? lo : hi) + " outside [0, " + std::to_string(label_dim_) + ")");
  }
}

at::Tensor Dataset::images(const at::Tensor& indices) const {
  auto x = images_.index_select(0, indices.to(at::kCPU).to(at::kLong));  // [B, C, H, W] uint8
  return x.to(at::kFloat) / 127.5 - 1;
}

at::Tensor Dataset::labels(const at::Tensor& indices) const {
  if (!has_labels())
    fail(source_, "labels requested but the dataset has none (hint: train unconditionally, or add dataset.json)");
  auto y = labels_.index_select(0, indices.to(at::kCPU).to(at::kLong));  // [B]
  return at::one_hot(y, label_dim_).to(at::kFloat);                     // [B, label_dim]
}

void Dataset::pad_to(int pad_to) {
  int64_t r = resolution();
  if (pad_to <= 0 || pad_to == r) return;
  if (pad_to < r)
    fail(source_, "pad_to " + std::to_string(pad_to) + " is smaller than the images (" + std::to_string(r) + ")");
  int64_t before = (pad_to - r) / 2;
  auto padded = at::zeros({size(), channels(), pad_to, pad_to}, images_.options());  // [N, C, P, P]
  padded.narrow(2, before, r).narrow(3, before, r).copy_(images_);
  images_ = padded;
}

}  // namespace pidistill
