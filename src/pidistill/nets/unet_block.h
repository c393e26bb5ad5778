// EDM's UNetBlock: GroupNorm-SiLU-conv residual block with noise-embedding modulation and optional
// multi-head self-attention (qkv interleaved per channel, as EDM lays it out).
#pragma once
#include "pidistill/nets/layers.h"

#include <memory>

namespace pidistill {

struct UNetBlockOptions {
  int64_t emb_channels = 0;           // Size of the embedding vector that modulates the block.
  bool up = false, down = false;      // 2x resampling in conv0 and skip.
  bool attention = false;             // Self-attention after the residual part.
  int64_t num_heads = -1;             // Attention heads; -1 = out_channels / channels_per_head.
  int64_t channels_per_head = 64;     // Used when num_heads is -1 (ADM).
  double dropout = 0;                 // Dropout probability before conv1.
  double skip_scale = 1;              // Scale of residual sums: sqrt(0.5) in SongUNet, 1 in ADM.
  double eps = 1e-5;                  // GroupNorm epsilon.
  std::vector<int> resample_filter = {1, 1};  // Taps of the resampling filter.
  bool resample_proj = false;         // 1x1 skip conv on up/down blocks even when channels are equal.
  bool adaptive_scale = true;         // ADM scale/shift modulation instead of an additive bias.
  InitOptions init;                   // conv0, affine, skip, and qkv unless init_attn is set.
  InitOptions init_zero = {"kaiming_normal", 0, 0};  // conv1 and proj.
  bool has_init_attn = false;         // Whether qkv uses init_attn instead of init.
  InitOptions init_attn;
};

struct UNetBlock : torch::nn::Module {
  UNetBlock(int64_t in_channels, int64_t out_channels, const UNetBlockOptions& options);
  // x: [N, in, H, W], emb: [N, emb_channels] -> [N, out, H', W']
  at::Tensor forward(const at::Tensor& x, const at::Tensor& emb,
                     const c10::optional<at::Generator>& generator = c10::nullopt);
  int64_t in_channels, out_channels, num_heads;
  UNetBlockOptions options;
  std::shared_ptr<GroupNorm> norm0, norm1, norm2;
  std::shared_ptr<Conv2d> conv0, conv1, skip, qkv, proj;
  std::shared_ptr<Linear> affine;
};

}  // namespace pidistill

namespace pidistill {

// One named entry of an encoder/decoder ModuleDict: exactly one of block, conv, norm is set.
struct UNetStage {
  std::string name;  // e.g. "16x16_block0", "8x8_aux_residual"
  std::shared_ptr<UNetBlock> block;
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<GroupNorm> norm;
};

// Registers `stage` under `dict` (EDM's enc/dec ModuleDict) and appends it to `stages`.
void add_stage(torch::nn::Module& dict, std::vector<UNetStage>& stages, UNetStage stage);

}  // namespace pidistill
