// Seed lists and per-seed latents: parsing, batch independence, and agreement with PyTorch's CPU generator.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "pidistill/util/error.h"
#include "pidistill/util/seeds.h"

using namespace pidistill;

TEST(ParseSeeds, RangesAndLists) {
  EXPECT_EQ(parse_seeds("0-3"), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(parse_seeds("1,5,9-12"), (std::vector<int64_t>{1, 5, 9, 10, 11, 12}));
  EXPECT_EQ(parse_seeds("7"), (std::vector<int64_t>{7}));
  EXPECT_EQ(parse_seeds(" 2 , 4-5 "), (std::vector<int64_t>{2, 4, 5}));
  EXPECT_EQ(parse_seeds("0-63").size(), 64u);
}

TEST(ParseSeeds, MalformedTextIsAnError) {
  for (const char* bad : {"", "a", "1,,2", "5-2", "-3", "1-", "3.5", "1-2-3", "0-99999999999"}) {
    try {
      parse_seeds(bad);
      ADD_FAILURE() << "no error for '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("seeds"), std::string::npos) << e.what();
    }
  }
}

TEST(LatentsForSeeds, SeedGivesSameLatentAloneOrInAList) {
  auto alone = latents_for_seeds({0}, 3, 8);         // [1, 3, 8, 8]
  auto listed = latents_for_seeds({5, 0, 9}, 3, 8);  // [3, 3, 8, 8]
  ASSERT_EQ(alone.sizes(), (std::vector<int64_t>{1, 3, 8, 8}));
  ASSERT_EQ(listed.sizes(), (std::vector<int64_t>{3, 3, 8, 8}));
  EXPECT_TRUE(at::equal(alone[0], listed[1]));
  EXPECT_FALSE(at::equal(listed[0], listed[1]));
  double mean = listed.mean().item<double>(), std = listed.std().item<double>();
  EXPECT_NEAR(mean, 0.0, 0.15);
  EXPECT_NEAR(std, 1.0, 0.15);
}

// The golden Heun file stores randn([4,3,16,16]) from torch.Generator().manual_seed(6000) (README section 6).
// PyTorch fills normals in blocks of 16 from one uniform stream, so the first 3*16*16 values are what a [3,16,16]
// draw from the same seed gives: this checks that our generator use matches Python's torch.randn.
TEST(LatentsForSeeds, MatchesPyTorchCpuGenerator) {
  std::string path = std::string(PIDISTILL_GOLDEN_DIR) + "/edm_heun_f64.safetensors";
  std::ifstream in(path, std::ios::binary);
  if (!in) GTEST_SKIP() << "no golden file " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string bytes = ss.str();
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  auto entry = header.at("latents");
  ASSERT_EQ(entry.at("dtype"), "F64");
  ASSERT_EQ(entry.at("shape"), nlohmann::json({4, 3, 16, 16}));
  size_t begin = entry.at("data_offsets")[0].get<size_t>();
  auto ref = at::empty({4, 3, 16, 16}, at::kDouble);
  std::memcpy(ref.data_ptr<double>(), bytes.data() + 8 + n + begin, ref.numel() * sizeof(double));

  auto ours = latents_for_seeds({6000}, 3, 16);  // [1, 3, 16, 16]
  double err = (ours[0].to(at::kDouble) - ref[0]).abs().max().item<double>();
  std::cout << "[ max abs err ] latents seed 6000 vs torch.randn: " << err << "\n";
  EXPECT_EQ(err, 0.0);
}
