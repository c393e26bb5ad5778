// Raw-network parity with the official EDM code: every tiny golden net through load_net, in float32 and float64.
#include "pidistill/nets/net_file.h"
#include "pidistill/nets/unet_block.h"
#include "test_common.h"

#include <ATen/ATen.h>

using namespace pidistill;
using pidistill::test::golden;
using pidistill::test::load_golden;
using pidistill::test::on_device;
using pidistill::test::test_device;

namespace {

constexpr double kTol64 = 1e-12;  // pure float64 against the pure-float64 reference
constexpr double kTol32 = 1e-5;   // float32 against the official float32 run

struct Case {
  const char* name;
  bool cond, aug;
};

void check_raw_network(const Case& c, bool f64) {
  auto io = load_golden(std::string(c.name) + (f64 ? "_io_f64.safetensors" : "_io_f32.safetensors"));
  auto loaded = load_net(golden(std::string(c.name) + "_weights.safetensors"));
  auto dtype = f64 ? at::kDouble : at::kFloat;
  loaded.net->to(test_device(), dtype);
  at::NoGradGuard no_grad;
  at::Tensor labels = c.cond ? on_device(io.get("class_labels")) : at::Tensor();
  auto x = on_device(io.get("F.x_in")), noise_labels = on_device(io.get("F.noise_labels"));
  auto out = loaded.net->forward(x, noise_labels, labels);
  EXPECT_EQ(out.scalar_type(), dtype);
  EXPECT_CLOSE(out, io.get("F.out"), f64 ? kTol64 : kTol32);
  if (c.aug) {
    auto out_aug = loaded.net->forward(x, noise_labels, labels, on_device(io.get("augment_labels")));
    EXPECT_CLOSE(out_aug, io.get("F_aug.out"), f64 ? kTol64 : kTol32);
  }
}

const Case kCases[] = {{"ddpmpp_uncond", false, false}, {"ddpmpp_cond", true, true}, {"ncsnpp_uncond", false, false},
                       {"adm_cond", true, false}};

}  // namespace

TEST(NetsGolden, RawNetworkFloat64) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    check_raw_network(c, true);
  }
}

TEST(NetsGolden, RawNetworkFloat32) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    check_raw_network(c, false);
  }
}

TEST(NetsGolden, TinyAdmHasNoAttention) {
  // 16 and 32 channels give 0 heads: dec.8x8_in0 asks for attention but gets none.
  auto loaded = load_net(golden("adm_cond_weights.safetensors"));
  for (const auto& [name, t] : state_dict(*loaded.net)) EXPECT_EQ(name.find("qkv"), std::string::npos) << name;
}

TEST(NetsGolden, NoiseLabelOfSizeOneBroadcasts) {
  auto io = load_golden("ddpmpp_cond_io_f64.safetensors");
  auto loaded = load_net(golden("ddpmpp_cond_weights.safetensors"));
  loaded.net->to(at::kDouble);
  at::NoGradGuard no_grad;
  auto x = io.get("F.x_in"), n = io.get("F.noise_labels"), labels = io.get("class_labels");
  auto one = loaded.net->forward(x, n.slice(0, 2, 3), labels);                     // n: [1]
  auto full = loaded.net->forward(x, n.slice(0, 2, 3).expand({x.size(0)}), labels);  // n: [B]
  EXPECT_CLOSE(one, full, 0.0);
}

// One ADM-style UNetBlock with 2 heads: tests the interleaved qkv layout and multi-head attention.
TEST(NetsGolden, UNetBlockTwoHeads) {
  auto weights = load_golden("unetblock_adm2head_weights.safetensors");
  UNetBlockOptions opt;
  opt.emb_channels = 64;
  opt.attention = true;
  opt.num_heads = 2;
  opt.init = {"kaiming_uniform", std::sqrt(1.0 / 3), std::sqrt(1.0 / 3)};
  opt.init_zero = {"kaiming_uniform", 0, 0};
  auto block = std::make_shared<UNetBlock>(32, 64, opt);
  auto params = block->named_parameters();
  ASSERT_EQ(params.size(), weights.tensors.size());
  size_t i = 0;
  {
    at::NoGradGuard no_grad;
    for (const auto& p : params) {
      const auto& [name, t] = weights.tensors[i++];
      ASSERT_EQ(p.key(), name);  // same names in the same order
      ASSERT_EQ(p.value().sizes(), t.sizes()) << name;
      p.value().copy_(t);
    }
  }
  block->eval();
  for (bool f64 : {true, false}) {
    auto io = load_golden(f64 ? "unetblock_adm2head_io_f64.safetensors" : "unetblock_adm2head_io_f32.safetensors");
    block->to(test_device(), f64 ? at::kDouble : at::kFloat);
    at::NoGradGuard no_grad;
    auto out = block->forward(on_device(io.get("x")), on_device(io.get("emb")));
    EXPECT_CLOSE(out, io.get("out"), f64 ? kTol64 : kTol32);
  }
}

TEST(NetsGolden, TorchSaveCheckpointsLoadLikeSafetensors) {
  NetConfig config = load_net(golden("ddpmpp_uncond_weights.safetensors")).config;
  auto ref = state_dict(*load_net(golden("ddpmpp_uncond_weights.safetensors")).net);
  for (const char* file : {"ddpmpp_uncond_state_dict.pt", "ddpmpp_uncond_plain_dict.pt"}) {
    SCOPED_TRACE(file);
    auto loaded = load_net(golden(file), config);
    auto got = state_dict(*loaded.net);
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].first, ref[i].first);
      EXPECT_TRUE(at::equal(got[i].second, ref[i].second)) << got[i].first;
    }
  }
}
