// EDM's SongUNet: the DDPM++ and NCSN++ architectures of Song et al., with every EDM option.
#pragma once
#include "pidistill/nets/embeddings.h"
#include "pidistill/nets/unet.h"
#include "pidistill/nets/unet_block.h"

namespace pidistill {

struct SongUNet : UNet {
  explicit SongUNet(const NetConfig& config);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& noise_labels, const at::Tensor& class_labels = {},
                     const at::Tensor& augment_labels = {}) override;

  std::shared_ptr<PositionalEmbedding> map_noise_positional;
  std::shared_ptr<FourierEmbedding> map_noise_fourier;
  std::shared_ptr<Linear> map_label, map_augment, map_layer0, map_layer1;
  std::shared_ptr<torch::nn::Module> enc, dec;
  std::vector<UNetStage> enc_stages, dec_stages;  // in EDM's ModuleDict order
};

}  // namespace pidistill
