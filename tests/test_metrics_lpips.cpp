// piq LPIPS against the golden lpips_io_{f32,f64} (synthetic weights regenerated from the README's rule),
// PID's bilinear upsampling, and weight-file loading.
#include "pidistill/io/safetensors.h"
#include "pidistill/metrics/lpips.h"
#include "pidistill/util/error.h"
#include "test_common.h"

#include <ATen/ATen.h>
#include <torch/serialize.h>

#include <fstream>

#include <cstdio>
#include <unistd.h>

using namespace pidistill;
using pidistill::test::load_golden;
using pidistill::test::on_device;
using pidistill::test::test_device;

namespace {

// Regenerating the 14.7M synthetic weights takes a moment: once per test binary.
const Lpips& synthetic() {
  static const Lpips w = Lpips::synthetic();
  return w;
}

std::string temp_path(const std::string& name) {
  return "/tmp/pidistill_test_lpips_" + std::to_string(getpid()) + "_" + name;
}

void check_io(const std::string& file, at::ScalarType dtype, double tol) {
  auto g = load_golden(file);
  at::Tensor x = on_device(g.get("img_x")), y = on_device(g.get("img_y"));  // [2, 3, 32, 32] in [-1, 1]
  ASSERT_EQ(x.scalar_type(), dtype);
  at::Tensor up_x = upsample_for_lpips(x), up_y = upsample_for_lpips(y);  // [2, 3, 224, 224]
  ASSERT_EQ(up_x.sizes(), (at::IntArrayRef{2, 3, 224, 224}));
  EXPECT_CLOSE(up_x.slice(2, 0, 16).slice(3, 0, 16), g.get("up_x_corner"), tol);
  EXPECT_CLOSE(up_y.slice(2, 0, 16).slice(3, 0, 16), g.get("up_y_corner"), tol);
  EXPECT_CLOSE(up_x.sum({1, 2, 3}), g.get("up_x_sum"), tol);
  EXPECT_CLOSE(up_y.sum({1, 2, 3}), g.get("up_y_sum"), tol);

  const Lpips w = synthetic().to(test_device(), dtype);
  at::Tensor x01 = (up_x + 1) / 2.0, y01 = (up_y + 1) / 2.0;
  // LPIPS at 224 is heavy on CPU (float64 most): float64 runs the pairs (x, y), (y, x) in one batch; float32
  // also runs PID's path from [-1, 1] images, the identical pair and per_layer() on its own.
  const bool full = dtype == at::kFloat;
  at::Tensor xs = full ? at::cat({x01, y01, x01}) : at::cat({x01, y01});
  at::Tensor ys = full ? at::cat({y01, x01, x01}) : at::cat({y01, x01});
  at::Tensor terms = w.channel_terms(xs, ys);  // [4 or 6, 1472]
  at::Tensor total = terms.sum(1);
  std::vector<at::Tensor> layers;
  for (auto block : terms.split_with_sizes({64, 128, 256, 512, 512}, 1)) layers.push_back(block.sum(1));
  at::Tensor per_layer = at::stack(layers, 1);  // [4 or 6, 5]
  EXPECT_CLOSE(per_layer.slice(0, 0, 2), g.get("lpips_per_layer"), tol);
  EXPECT_CLOSE(total.slice(0, 0, 2), g.get("lpips"), tol);
  EXPECT_CLOSE(total.slice(0, 2, 4), g.get("lpips_swapped"), tol);
  if (!full) return;
  EXPECT_TRUE(at::equal(total.slice(0, 4, 6).cpu(), g.get("lpips_identical"))) << total;
  EXPECT_CLOSE(lpips_distance(w, x, y), g.get("lpips"), tol);
  EXPECT_CLOSE(w.per_layer(x01, y01), g.get("lpips_per_layer"), tol);
}

}  // namespace

TEST(LpipsWeights, SyntheticMatchesCheckFile) {
  auto check = load_golden("lpips_synth_weights_check.safetensors");
  NamedTensors named = synthetic().named_tensors();
  ASSERT_EQ(named.size(), 31u);
  for (const auto& [name, t] : named) {
    SCOPED_TRACE(name);
    at::Tensor flat = t.reshape({-1});
    EXPECT_TRUE(at::equal(flat.slice(0, 0, 8), check.get(name + ".first8")));  // bit-exact
    at::Tensor d = flat.to(at::kDouble);
    EXPECT_NEAR(d.sum().item<double>(), check.get(name + ".sum_f64").item<double>(),
                1e-12 * d.abs().sum().item<double>());
    EXPECT_NEAR(d.pow(2).sum().item<double>(), check.get(name + ".sumsq_f64").item<double>(),
                1e-12 * check.get(name + ".sumsq_f64").item<double>());
  }
}

TEST(Lpips, GoldenFloat64) { check_io("lpips_io_f64.safetensors", at::kDouble, 1e-10); }

TEST(Lpips, GoldenFloat32) { check_io("lpips_io_f32.safetensors", at::kFloat, 1e-5); }

TEST(Lpips, UpsampleMatchesBilinearFormulaInFloat64) {
  // PyTorch's align_corners=false rule written out: src = (dst + 0.5) * in/out - 0.5, clamped at 0.
  at::Tensor x = at::arange(32 * 32, at::kDouble).sin().view({1, 1, 32, 32});
  at::Tensor up = upsample_for_lpips(x);  // [1, 1, 224, 224]
  const double scale = 32.0 / 224.0;
  at::Tensor idx0 = at::empty({224}, at::kLong), idx1 = at::empty({224}, at::kLong), lam = at::empty({224}, at::kDouble);
  for (int d = 0; d < 224; ++d) {
    double src = std::max((d + 0.5) * scale - 0.5, 0.0);
    int64_t i0 = static_cast<int64_t>(std::floor(src));
    idx0[d] = i0;
    idx1[d] = std::min<int64_t>(i0 + 1, 31);
    lam[d] = src - i0;
  }
  at::Tensor a = x[0][0];
  at::Tensor rows = a.index_select(0, idx0) * (1 - lam).unsqueeze(1) + a.index_select(0, idx1) * lam.unsqueeze(1);
  at::Tensor ref = rows.index_select(1, idx0) * (1 - lam) + rows.index_select(1, idx1) * lam;  // [224, 224]
  EXPECT_CLOSE(up[0][0], ref, 1e-14);
  // Images 256 wide or more pass unchanged.
  at::Tensor big = at::zeros({1, 3, 8, 256});
  EXPECT_TRUE(upsample_for_lpips(big).is_same(big));
}

TEST(LpipsWeights, MissingFileSaysHowToGetWeights) {
  try {
    Lpips::load("/nonexistent/lpips.safetensors");
    FAIL() << "expected Error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("/nonexistent/lpips.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("convert_lpips_weights.py"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--lpips-weights"), std::string::npos) << msg;
  }
}

TEST(LpipsWeights, CombinedAndSeparateFilesLoad) {
  const Lpips& w = synthetic();
  NamedTensors all = w.named_tensors();
  // Combined file: every tensor back, bit for bit.
  const std::string combined = temp_path("combined.safetensors");
  write_safetensors(combined, all);
  Lpips back = Lpips::load(combined);
  for (size_t c = 0; c < 13; ++c) EXPECT_TRUE(at::equal(back.conv_weight[c], w.conv_weight[c]));
  for (size_t l = 0; l < 5; ++l) EXPECT_TRUE(at::equal(back.lin[l], w.lin[l]));

  // Separate files: a VGG state dict with classifier keys, and piq's list of 5 flat weights as "0".."4".
  NamedTensors vgg(all.begin(), all.begin() + 26), lin;
  vgg.emplace_back("classifier.0.weight", at::zeros({4, 4}));
  for (int l = 0; l < 5; ++l) lin.emplace_back(std::to_string(l), w.lin[l].reshape({-1}));
  const std::string vgg_path = temp_path("vgg.safetensors"), lin_path = temp_path("lin.safetensors");
  write_safetensors(vgg_path, vgg);
  write_safetensors(lin_path, lin);
  Lpips apart = Lpips::load(vgg_path, lin_path);
  EXPECT_TRUE(at::equal(apart.conv_weight[12], w.conv_weight[12]));
  EXPECT_TRUE(at::equal(apart.lin[4], w.lin[4]));
  EXPECT_EQ(apart.lin[4].sizes(), (at::IntArrayRef{1, 512, 1, 1}));

  // piq's lpips_weights.pt is a torch.save of a plain list of tensors; torch::pickle_save writes that format.
  // (A generic list pickles as a plain Python list; a typed c10::List<Tensor> would not.)
  c10::impl::GenericList list(c10::AnyType::get());
  for (int l = 0; l < 5; ++l) list.push_back(w.lin[l]);
  std::vector<char> bytes = torch::pickle_save(c10::IValue(list));
  const std::string lin_pt = temp_path("lpips_weights.pt");
  std::ofstream(lin_pt, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  Lpips from_pt = Lpips::load(vgg_path, lin_pt);
  for (int l = 0; l < 5; ++l) EXPECT_TRUE(at::equal(from_pt.lin[l], w.lin[l])) << l;
  std::remove(lin_pt.c_str());

  // The VGG file alone is not enough: the error names the missing linear weight and the converter.
  try {
    Lpips::load(vgg_path);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lpips_lin.0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("convert_lpips_weights.py"), std::string::npos) << e.what();
  }
  // A wrong shape is named.
  NamedTensors bad = all;
  bad[2].second = at::zeros({64, 3, 3, 3});
  write_safetensors(combined, bad);
  EXPECT_THROW(Lpips::load(combined), Error);
  for (const auto& p : {combined, vgg_path, lin_path}) std::remove(p.c_str());
}
