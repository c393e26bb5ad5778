// EDM's DhariwalUNet: the ADM architecture of Dhariwal & Nichol, as EDM re-implements it.
#pragma once
#include "pidistill/nets/embeddings.h"
#include "pidistill/nets/unet.h"
#include "pidistill/nets/unet_block.h"

namespace pidistill {

struct DhariwalUNet : UNet {
  explicit DhariwalUNet(const NetConfig& config);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& noise_labels, const at::Tensor& class_labels = {},
                     const at::Tensor& augment_labels = {}) override;

  std::shared_ptr<PositionalEmbedding> map_noise;
  std::shared_ptr<Linear> map_augment, map_layer0, map_layer1, map_label;
  std::shared_ptr<torch::nn::Module> enc, dec;
  std::vector<UNetStage> enc_stages, dec_stages;  // in EDM's ModuleDict order
  std::shared_ptr<GroupNorm> out_norm;
  std::shared_ptr<Conv2d> out_conv;
};

}  // namespace pidistill
