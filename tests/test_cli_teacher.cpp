// The bundled Fashion-MNIST teacher: it loads from a fresh clone, generates with EDM's sampler, and its samples
// carry what a trained model of this data must show, which an untrained network does not.
#include "pidistill/io/safetensors.h"
#include "test_cli_util.h"

#include <ATen/ATen.h>

#include <iostream>

namespace pidistill::test {
namespace {

const std::string kTeacher = std::string(PIDISTILL_SOURCE_DIR) + "/models/fashion-mnist-ddpmpp-teacher.safetensors";

TEST(BundledTeacher, SamplesLookLikeFashionMnist) {
  const std::string out = scratch_dir() + "/teacher_samples.safetensors";
  const std::string grid = scratch_dir() + "/teacher_samples.png";
  auto r = run_cli("generate --net " + quoted(kTeacher) + " --seeds 0-15 --steps 18 --out " + quoted(out) +
                   " --grid " + quoted(grid) + " --threads 1");
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_TRUE(std::filesystem::exists(grid));
  at::Tensor x = read_safetensors(out).get("x_final").to(at::kDouble);  // [16, 1, 32, 32]
  ASSERT_EQ(x.sizes(), (at::IntArrayRef{16, 1, 32, 32}));

  // Why these properties: every training image is a 28x28 garment zero-padded to 32x32 (value -1 after scaling)
  // on a black background. So a trained teacher draws a black 2-pixel frame and mostly black surroundings, with
  // bright garments in the middle; an untrained network's outputs have none of this.
  at::Tensor inner = x.slice(2, 2, 30).slice(3, 2, 30);
  double frame_mean = (x.sum() - inner.sum()).item<double>() / (16.0 * (32 * 32 - 28 * 28));
  double dark_fraction = (x < -0.9).to(at::kDouble).mean().item<double>();
  double centre_mean = x.slice(2, 10, 22).slice(3, 10, 22).mean().item<double>();
  double per_image_std = x.flatten(1).std(1).min().item<double>();
  std::cout << "frame mean " << frame_mean << ", dark fraction " << dark_fraction << ", centre mean " << centre_mean
            << ", smallest per-image std " << per_image_std << "\n";
  EXPECT_LT(frame_mean, -0.9);      // the padding frame is black
  EXPECT_GT(dark_fraction, 0.3);    // much of each image is background
  EXPECT_GT(centre_mean, -0.6);     // garments are bright and centred
  EXPECT_GT(per_image_std, 0.1);    // no image is blank
  double outside = (x.abs() > 1.1).to(at::kDouble).mean().item<double>();
  std::cout << "fraction outside [-1.1, 1.1] " << outside << "\n";
  EXPECT_LT(outside, 0.01);  // within the data range, up to sampler error
}

// The bundled files travel to other machines: their metadata names no folder of the machine they were made on.
TEST(BundledTeacher, MetadataRecordsNoAbsolutePaths) {
  const std::string models = std::string(PIDISTILL_SOURCE_DIR) + "/models/";
  for (const std::string name : {"fashion-mnist-ddpmpp-teacher.safetensors", "fashion-mnist-pid-student.safetensors"}) {
    SCOPED_TRACE(name);
    const TensorFile file = read_safetensors(models + name);
    for (const auto& [key, value] : file.metadata) {
      EXPECT_EQ(value.find("\"/"), std::string::npos) << key << " = " << value;
      EXPECT_NE(value.rfind("/", 0), 0u) << key << " = " << value;
    }
  }
}

}  // namespace
}  // namespace pidistill::test
