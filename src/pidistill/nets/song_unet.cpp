#include "pidistill/nets/song_unet.h"

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

SongUNet::SongUNet(const NetConfig& cfg) {
  config = cfg;
  const int64_t emb_channels = int64_t(cfg.model_channels) * cfg.channel_mult_emb;
  const int64_t noise_channels = int64_t(cfg.model_channels) * cfg.channel_mult_noise;
  const InitOptions init{"xavier_uniform", 1, 0};
  const InitOptions init_zero{"xavier_uniform", 1e-5, 0};
  const InitOptions init_attn{"xavier_uniform", std::sqrt(0.2), 0};
  UNetBlockOptions block;
  block.emb_channels = emb_channels;
  block.num_heads = 1;
  block.dropout = cfg.dropout;
  block.skip_scale = std::sqrt(0.5);
  block.eps = 1e-6;
  block.resample_filter = cfg.resample_filter;
  block.resample_proj = true;
  block.adaptive_scale = false;
  block.init = init;
  block.init_zero = init_zero;
  block.has_init_attn = true;
  block.init_attn = init_attn;

  // Mapping.
  if (cfg.embedding_type == "positional")
    map_noise_positional = register_module("map_noise", std::make_shared<PositionalEmbedding>(noise_channels, true));
  else
    map_noise_fourier = register_module("map_noise", std::make_shared<FourierEmbedding>(noise_channels));
  if (cfg.label_dim) map_label = register_module("map_label", std::make_shared<Linear>(cfg.label_dim, noise_channels, true, init));
  if (cfg.augment_dim)
    map_augment = register_module("map_augment", std::make_shared<Linear>(cfg.augment_dim, noise_channels, false, init));
  map_layer0 = register_module("map_layer0", std::make_shared<Linear>(noise_channels, emb_channels, true, init));
  map_layer1 = register_module("map_layer1", std::make_shared<Linear>(emb_channels, emb_channels, true, init));

  // Encoder.
  enc = register_module("enc", std::make_shared<torch::nn::Module>());
  int64_t cout = cfg.img_channels, caux = cfg.img_channels;
  std::vector<int64_t> skips;
  for (size_t level = 0; level < cfg.channel_mult.size(); ++level) {
    const int res = cfg.img_resolution >> level;
    if (level == 0) {
      int64_t cin = cout;
      cout = cfg.model_channels;
      add_stage(*enc, enc_stages, {res_name(res, "conv"), nullptr,
                                   std::make_shared<Conv2d>(cin, cout, Conv2dOptions{3, true, false, false, {1, 1}, false, init}), nullptr});
      skips.push_back(cout);
    } else {
      auto down = block;
      down.down = true;
      add_stage(*enc, enc_stages, {res_name(res, "down"), std::make_shared<UNetBlock>(cout, cout, down), nullptr, nullptr});
      skips.push_back(cout);
      if (cfg.encoder_type == "skip") {
        Conv2dOptions aux_down{0, true, false, true, cfg.resample_filter, false, InitOptions{}};
        add_stage(*enc, enc_stages, {res_name(res, "aux_down"), nullptr, std::make_shared<Conv2d>(caux, caux, aux_down), nullptr});
        Conv2dOptions aux_skip{1, true, false, false, {1, 1}, false, init};
        add_stage(*enc, enc_stages, {res_name(res, "aux_skip"), nullptr, std::make_shared<Conv2d>(caux, cout, aux_skip), nullptr});
      }
      if (cfg.encoder_type == "residual") {
        Conv2dOptions aux_res{3, true, false, true, cfg.resample_filter, true, init};
        add_stage(*enc, enc_stages, {res_name(res, "aux_residual"), nullptr, std::make_shared<Conv2d>(caux, cout, aux_res), nullptr});
        caux = cout;
      }
    }
    for (int idx = 0; idx < cfg.num_blocks; ++idx) {
      int64_t cin = cout;
      cout = int64_t(cfg.model_channels) * cfg.channel_mult[level];
      auto b = block;
      b.attention = contains(cfg.attn_resolutions, res);
      add_stage(*enc, enc_stages, {res_name(res, "block" + std::to_string(idx)), std::make_shared<UNetBlock>(cin, cout, b), nullptr, nullptr});
      skips.push_back(cout);
    }
  }

  // Decoder.
  dec = register_module("dec", std::make_shared<torch::nn::Module>());
  const int64_t out_channels = cfg.img_channels;
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
      b.attention = idx == cfg.num_blocks && contains(cfg.attn_resolutions, res);
      add_stage(*dec, dec_stages, {res_name(res, "block" + std::to_string(idx)), std::make_shared<UNetBlock>(cin, cout, b), nullptr, nullptr});
    }
    if (cfg.decoder_type == "skip" || level == 0) {
      if (cfg.decoder_type == "skip" && level < int(cfg.channel_mult.size()) - 1) {
        Conv2dOptions aux_up{0, true, true, false, cfg.resample_filter, false, InitOptions{}};
        add_stage(*dec, dec_stages, {res_name(res, "aux_up"), nullptr, std::make_shared<Conv2d>(out_channels, out_channels, aux_up), nullptr});
      }
      add_stage(*dec, dec_stages, {res_name(res, "aux_norm"), nullptr, nullptr, std::make_shared<GroupNorm>(cout, 1e-6)});
      Conv2dOptions aux_conv{3, true, false, false, {1, 1}, false, init_zero};
      add_stage(*dec, dec_stages, {res_name(res, "aux_conv"), nullptr, std::make_shared<Conv2d>(cout, out_channels, aux_conv), nullptr});
    }
  }
}

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

at::Tensor SongUNet::forward(const at::Tensor& x_in, const at::Tensor& noise_labels_in, const at::Tensor& class_labels,
                             const at::Tensor& augment_labels) {
  const int64_t N = x_in.size(0);
  // noise_labels: [N] (a single label is broadcast over the batch)
  auto noise_labels = noise_labels_in.reshape({-1});
  if (noise_labels.numel() == 1 && N != 1) noise_labels = noise_labels.expand({N});

  // Mapping. Why the flip: SongUNet swaps the embedding's cos/sin halves to [sin, cos].
  auto emb = map_noise_positional ? map_noise_positional->forward(noise_labels) : map_noise_fourier->forward(noise_labels);
  emb = emb.reshape({emb.size(0), 2, -1}).flip(1).reshape(emb.sizes());  // emb: [N, noise_channels]
  if (map_label) {
    if (!class_labels.defined()) fail("SongUNet", "class_labels required (label_dim " + std::to_string(config.label_dim) + ")");
    auto tmp = class_labels;
    if (is_training() && config.label_dropout)
      tmp = tmp * (at::rand({N, 1}, generator, tmp.options()) >= config.label_dropout).to(tmp.scalar_type());
    emb = emb + map_label->forward(tmp * std::sqrt(double(map_label->in_features)));
  }
  if (map_augment && augment_labels.defined()) emb = emb + map_augment->forward(augment_labels);
  emb = at::silu(map_layer0->forward(emb));
  emb = at::silu(map_layer1->forward(emb));  // emb: [N, emb_channels]

  // Encoder.
  std::vector<at::Tensor> skips;
  at::Tensor x = x_in, aux = x_in;
  for (auto& s : enc_stages) {
    if (ends_with(s.name, "aux_down")) {
      aux = s.conv->forward(aux);
    } else if (ends_with(s.name, "aux_skip")) {
      x = skips.back() = x + s.conv->forward(aux);
    } else if (ends_with(s.name, "aux_residual")) {
      x = skips.back() = aux = (x + s.conv->forward(aux)) / std::sqrt(2.0);
    } else {
      x = s.block ? s.block->forward(x, emb, generator) : s.conv->forward(x);
      skips.push_back(x);
    }
  }

  // Decoder.
  at::Tensor out, tmp;
  for (auto& s : dec_stages) {
    if (ends_with(s.name, "aux_up")) {
      out = s.conv->forward(out);
    } else if (ends_with(s.name, "aux_norm")) {
      tmp = s.norm->forward(x);
    } else if (ends_with(s.name, "aux_conv")) {
      tmp = s.conv->forward(at::silu(tmp));
      out = out.defined() ? tmp + out : tmp;
    } else {
      if (x.size(1) != s.block->in_channels) {
        x = at::cat({x, skips.back()}, 1);
        skips.pop_back();
      }
      x = s.block->forward(x, emb, generator);
    }
  }
  return out;
}

}  // namespace pidistill
