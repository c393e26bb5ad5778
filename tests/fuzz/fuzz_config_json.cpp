// Network config JSON (a weight file's metadata "config", --config, an EDM pickle's _init_kwargs), then what
// load_net does with an accepted config before building anything: count its tensors on the meta device.
#include "fuzz_common.h"
#include "pidistill/nets/net_config.h"
#include "pidistill/nets/unet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  pidistill::fuzz::expect_only_errors("config_json", [&] {
    const pidistill::NetConfig c = pidistill::net_config_from_json(text);
    pidistill::unet_tensor_elements(c);
  });
  pidistill::fuzz::expect_only_errors("config_json", [&] {
    pidistill::net_config_from_edm_kwargs(text, size && (data[0] & 1) ? "DhariwalUNet" : "SongUNet");
  });
  return 0;
}
