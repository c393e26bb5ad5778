#include "pidistill/nets/unet.h"

#include "pidistill/nets/dhariwal_unet.h"
#include "pidistill/nets/song_unet.h"

#include <ATen/ATen.h>

namespace pidistill {

std::shared_ptr<UNet> make_unet(const NetConfig& config) {
  validate(config);
  if (config.model_type == "DhariwalUNet") return std::make_shared<DhariwalUNet>(config);
  return std::make_shared<SongUNet>(config);
}

}  // namespace pidistill
