#include "pidistill/nets/unet.h"

#include "pidistill/nets/dhariwal_unet.h"
#include "pidistill/nets/layers.h"
#include "pidistill/nets/song_unet.h"

#include <ATen/ATen.h>

namespace pidistill {

std::shared_ptr<UNet> make_unet(const NetConfig& config) {
  validate(config);
  if (config.model_type == "DhariwalUNet") return std::make_shared<DhariwalUNet>(config);
  return std::make_shared<SongUNet>(config);
}

int64_t unet_tensor_elements(const NetConfig& config) {
  MetaParameters meta;
  const std::shared_ptr<UNet> net = make_unet(config);
  int64_t n = 0;
  for (const at::Tensor& p : net->parameters()) n += p.numel();
  for (const at::Tensor& b : net->buffers()) n += b.numel();
  return n;
}

}  // namespace pidistill
