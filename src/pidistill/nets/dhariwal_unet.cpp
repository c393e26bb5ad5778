#include "pidistill/nets/dhariwal_unet.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

namespace pidistill {

namespace {
std::string res_name(int res, const std::string& what) {
  return std::to_string(res) + "x" + std::to_string(res) + "_" + what;
}
bool contains(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }
}  // namespace

DhariwalUNet::DhariwalUNet(const NetConfig& cfg) {
  config = cfg;
  const int64_t emb_channels = int64_t(cfg.model_channels) * cfg.channel_mult_emb;
  const InitOptions init{"kaiming_uniform", std::sqrt(1.0 / 3), std::sqrt(1.0 / 3)};
  const InitOptions init_zero{"kaiming_uniform", 0, 0};
  UNetBlockOptions block;
  block.emb_channels = emb_channels;
  block.channels_per_head = 64;
  block.dropout = cfg.dropout;
  block.init = init;
  block.init_zero = init_zero;

  // Mapping.
  map_noise = register_module("map_noise", std::make_shared<PositionalEmbedding>(cfg.model_channels, false));
  if (cfg.augment_dim)
    map_augment = register_module("map_augment", std::make_shared<Linear>(cfg.augment_dim, cfg.model_channels, false, init_zero));
  map_layer0 = register_module("map_layer0", std::make_shared<Linear>(cfg.model_channels, emb_channels, true, init));
  map_layer1 = register_module("map_layer1", std::make_shared<Linear>(emb_channels, emb_channels, true, init));
  if (cfg.label_dim)
    map_label = register_module("map_label", std::make_shared<Linear>(cfg.label_dim, emb_channels, false,
                                                                      InitOptions{"kaiming_normal", std::sqrt(double(cfg.label_dim)), 0}));

  // Encoder.
  enc = register_module("enc", std::make_shared<torch::nn::Module>());
  int64_t cout = cfg.img_channels;
  std::vector<int64_t> skips;
  for (size_t level = 0; level < cfg.channel_mult.size(); ++level) {
    const int res = cfg.img_resolution >> level;
    const int64_t channels = int64_t(cfg.model_channels) * cfg.channel_mult[level];
    if (level == 0) {
      int64_t cin = cout;
      cout = channels;
      add_stage(*enc, enc_stages, {res_name(res, "conv"), nullptr,
                                   std::make_shared<Conv2d>(cin, cout, Conv2dOptions{3, true, false, false, {1, 1}, false, init}), nullptr});
    } else {
      auto down = block;
      down.down = true;
      add_stage(*enc, enc_stages, {res_name(res, "down"), std::make_shared<UNetBlock>(cout, cout, down), nullptr, nullptr});
    }
    skips.push_back(cout);
    for (int idx = 0; idx < cfg.num_blocks; ++idx) {
      int64_t cin = cout;
      cout = channels;
      auto b = block;
      b.attention = contains(cfg.attn_resolutions, res);
      add_stage(*enc, enc_stages, {res_name(res, "block" + std::to_string(idx)), std::make_shared<UNetBlock>(cin, cout, b), nullptr, nullptr});
      skips.push_back(cout);
    }
  }

  // Decoder.
  dec = register_module("dec", std::make_shared<torch::nn::Module>());
  for (int level = int(cfg.channel_mult.size()) - 1; level >= 0; --level) {
    const int res = cfg.img_resolution >> level;
    if (level == int(cfg.channel_mult.size()) - 1) {
      auto in0 = block;
      in0.attention = true;
      add_stage(*dec, dec_stages, {res_name(res, "in0"), std::make_shared<UNetBlock>(cout, cout, in0), nullptr, nullptr});
      add_stage(*dec, dec_stages, {res_name(res, "in1"), std::make_shared<UNetBlock>(cout, cout, block), nullptr, nullptr});
    } else {
      auto up = block;
      up.up = true;
      add_stage(*dec, dec_stages, {res_name(res, "up"), std::make_shared<UNetBlock>(cout, cout, up), nullptr, nullptr});
    }
    for (int idx = 0; idx <= cfg.num_blocks; ++idx) {
      int64_t cin = cout + skips.back();
      skips.pop_back();
      cout = int64_t(cfg.model_channels) * cfg.channel_mult[level];
      auto b = block;
      b.attention = contains(cfg.attn_resolutions, res);
      add_stage(*dec, dec_stages, {res_name(res, "block" + std::to_string(idx)), std::make_shared<UNetBlock>(cin, cout, b), nullptr, nullptr});
    }
  }
  out_norm = register_module("out_norm", std::make_shared<GroupNorm>(cout, 1e-5));
  out_conv = register_module("out_conv", std::make_shared<Conv2d>(cout, cfg.img_channels,
                                                                  Conv2dOptions{3, true, false, false, {1, 1}, false, init_zero}));
}

at::Tensor DhariwalUNet::forward(const at::Tensor& x_in, const at::Tensor& noise_labels_in,
                                 const at::Tensor& class_labels, const at::Tensor& augment_labels) {
  const int64_t N = x_in.size(0);
  auto noise_labels = noise_labels_in.reshape({-1});  // [N]; a single label is broadcast over the batch
  if (noise_labels.numel() == 1 && N != 1) noise_labels = noise_labels.expand({N});

  // Mapping. ADM keeps [cos, sin] and adds the (unscaled) label after map_layer1.
  auto emb = map_noise->forward(noise_labels);  // emb: [N, model_channels]
  if (map_augment && augment_labels.defined()) emb = emb + map_augment->forward(augment_labels);
  emb = at::silu(map_layer0->forward(emb));
  emb = map_layer1->forward(emb);  // emb: [N, emb_channels]
  if (map_label) {
    if (!class_labels.defined()) fail("DhariwalUNet", "class_labels required (label_dim " + std::to_string(config.label_dim) + ")");
    auto tmp = class_labels;
    if (is_training() && config.label_dropout)
      tmp = tmp * (at::rand({N, 1}, generator, tmp.options()) >= config.label_dropout).to(tmp.scalar_type());
    emb = emb + map_label->forward(tmp);
  }
  emb = at::silu(emb);

  std::vector<at::Tensor> skips;
  at::Tensor x = x_in;
  for (auto& s : enc_stages) {
    x = s.block ? s.block->forward(x, emb, generator) : s.conv->forward(x);
    skips.push_back(x);
  }
  for (auto& s : dec_stages) {
    if (x.size(1) != s.block->in_channels) {
      x = at::cat({x, skips.back()}, 1);
      skips.pop_back();
    }
    x = s.block->forward(x, emb, generator);
  }
  return out_conv->forward(at::silu(out_norm->forward(x)));
}

}  // namespace pidistill
