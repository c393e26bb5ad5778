#include "pidistill/nets/unet_block.h"

#include <ATen/ATen.h>

#include <cmath>

namespace pidistill {

UNetBlock::UNetBlock(int64_t in, int64_t out, const UNetBlockOptions& opt)
    : in_channels(in), out_channels(out), options(opt) {
  num_heads = !opt.attention ? 0 : opt.num_heads >= 0 ? opt.num_heads : out / opt.channels_per_head;
  // Registration order is EDM's construction order, which fixes both state-dict order and init draws.
  norm0 = register_module("norm0", std::make_shared<GroupNorm>(in, opt.eps));
  Conv2dOptions c0{3, true, opt.up, opt.down, opt.resample_filter, false, opt.init};
  conv0 = register_module("conv0", std::make_shared<Conv2d>(in, out, c0));
  affine = register_module("affine", std::make_shared<Linear>(opt.emb_channels, out * (opt.adaptive_scale ? 2 : 1),
                                                              true, opt.init));
  norm1 = register_module("norm1", std::make_shared<GroupNorm>(out, opt.eps));
  conv1 = register_module("conv1", std::make_shared<Conv2d>(out, out, Conv2dOptions{3, true, false, false,
                                                                                    {1, 1}, false, opt.init_zero}));
  if (out != in || opt.up || opt.down) {
    int64_t kernel = (opt.resample_proj || out != in) ? 1 : 0;
    Conv2dOptions cs{kernel, true, opt.up, opt.down, opt.resample_filter, false, opt.init};
    skip = register_module("skip", std::make_shared<Conv2d>(in, out, cs));
  }
  if (num_heads) {
    norm2 = register_module("norm2", std::make_shared<GroupNorm>(out, opt.eps));
    Conv2dOptions cq{1, true, false, false, {1, 1}, false, opt.has_init_attn ? opt.init_attn : opt.init};
    qkv = register_module("qkv", std::make_shared<Conv2d>(out, out * 3, cq));
    proj = register_module("proj", std::make_shared<Conv2d>(out, out, Conv2dOptions{1, true, false, false,
                                                                                    {1, 1}, false, opt.init_zero}));
  }
}

at::Tensor UNetBlock::forward(const at::Tensor& orig, const at::Tensor& emb,
                              const c10::optional<at::Generator>& generator) {
  auto x = conv0->forward(at::silu(norm0->forward(orig)));  // x: [N, out, H', W']
  auto params = affine->forward(emb).unsqueeze(2).unsqueeze(3).to(x.scalar_type());  // params: [N, out*(1|2), 1, 1]
  if (options.adaptive_scale) {
    auto chunks = params.chunk(2, 1);  // scale, shift: [N, out, 1, 1]
    x = at::silu(at::addcmul(chunks[1], norm1->forward(x), chunks[0] + 1));
  } else {
    x = at::silu(norm1->forward(x + params));
  }
  x = conv1->forward(dropout(x, options.dropout, is_training(), generator));
  x = x + (skip ? skip->forward(orig) : orig);
  x = x * options.skip_scale;

  if (num_heads) {
    int64_t N = x.size(0), C = x.size(1);
    // Why: EDM views qkv as [N*heads, C/heads, 3, HW], so q, k, v are interleaved per channel.
    auto qkv_out = qkv->forward(norm2->forward(x)).reshape({N * num_heads, C / num_heads, 3, -1});
    auto parts = qkv_out.unbind(2);  // q, k, v: [N*heads, C/heads, HW]
    const auto& q = parts[0];
    const auto& k = parts[1];
    const auto& v = parts[2];
    // Why: EDM scales k before the product; it computes this in float32, we in x's dtype (pure float64).
    auto w = at::einsum("ncq,nck->nqk", {q, k / std::sqrt(double(k.size(1)))}).softmax(2);  // w: [N*heads, HW, HW]
    auto a = at::einsum("nqk,nck->ncq", {w, v});                                            // a: [N*heads, C/heads, HW]
    x = proj->forward(a.reshape(x.sizes())) + x;
    x = x * options.skip_scale;
  }
  return x;
}

}  // namespace pidistill

namespace pidistill {

void add_stage(torch::nn::Module& dict, std::vector<UNetStage>& stages, UNetStage stage) {
  if (stage.block) dict.register_module(stage.name, stage.block);
  if (stage.conv) dict.register_module(stage.name, stage.conv);
  if (stage.norm) dict.register_module(stage.name, stage.norm);
  stages.push_back(std::move(stage));
}

}  // namespace pidistill
