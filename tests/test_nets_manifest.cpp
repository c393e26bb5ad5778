// Structure tests: full-size EDM networks match the released checkpoints' key/shape manifests, and a seeded
// init reproduces EDM's initial weights (the golden weights are that init plus seeded N(0, 0.05^2) noise).
#include "pidistill/nets/net_file.h"
#include "pidistill/nets/unet_block.h"
#include "test_common.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

using namespace pidistill;
using pidistill::test::golden;
using pidistill::test::load_golden;

namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

int64_t count_parameters(const UNet& net) {
  int64_t n = 0;
  for (const auto& p : net.parameters()) n += p.numel();
  return n;
}

void check_manifest(const std::string& release) {
  auto m = read_json(golden("manifest_" + release + ".json"));
  auto config = net_config_from_json(m["constructor_kwargs"].dump());
  auto net = make_unet(config);
  auto state = state_dict(*net);
  const auto& keys = m["keys"];
  ASSERT_EQ(state.size(), keys.size());
  ASSERT_EQ(int64_t(state.size()), m["num_state_dict_entries"].get<int64_t>());
  std::set<std::string> buffers;
  for (const auto& b : net->named_buffers()) buffers.insert("model." + b.key());
  int64_t buffer_elements = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto& name = keys[i][0].get<std::string>();
    ASSERT_EQ(state[i].first, name) << "entry " << i;  // same key in the same position
    EXPECT_EQ(state[i].second.sizes().vec(), keys[i][1].get<std::vector<int64_t>>()) << name;
    EXPECT_EQ(buffers.count(name) ? "buffer" : "param", keys[i][2].get<std::string>()) << name;
    if (buffers.count(name)) buffer_elements += state[i].second.numel();
  }
  EXPECT_EQ(count_parameters(*net), m["total_parameters"].get<int64_t>());
  EXPECT_EQ(buffer_elements, m["total_buffer_elements"].get<int64_t>());
  // PID's student/teacher: the same network without the augmentation mapping (ADM has none already).
  int64_t pid_parameters = count_parameters(*net);
  if (config.augment_dim) {
    net.reset();
    config.augment_dim = 0;
    pid_parameters = count_parameters(*make_unet(config));
  }
  EXPECT_EQ(pid_parameters, m["pid_total_parameters_after_strip"].get<int64_t>());
}

}  // namespace

TEST(NetsManifest, Cifar10UncondVp) { check_manifest("edm-cifar10-32x32-uncond-vp"); }
TEST(NetsManifest, Cifar10CondVp) { check_manifest("edm-cifar10-32x32-cond-vp"); }
TEST(NetsManifest, Cifar10UncondVe) { check_manifest("edm-cifar10-32x32-uncond-ve"); }
TEST(NetsManifest, Cifar10CondVe) { check_manifest("edm-cifar10-32x32-cond-ve"); }
TEST(NetsManifest, ImageNet64CondAdm) { check_manifest("edm-imagenet-64x64-cond-adm"); }

TEST(NetsManifest, PresetsMatchReleasedConfigs) {
  auto vp = read_json(golden("manifest_edm-cifar10-32x32-uncond-vp.json"))["constructor_kwargs"];
  auto ve = read_json(golden("manifest_edm-cifar10-32x32-uncond-ve.json"))["constructor_kwargs"];
  auto adm = read_json(golden("manifest_edm-imagenet-64x64-cond-adm.json"))["constructor_kwargs"];
  auto same = [](NetConfig a, const nlohmann::json& kwargs, int label_dim) {
    a.label_dim = label_dim;
    EXPECT_EQ(net_config_to_json(a), net_config_to_json(net_config_from_json(kwargs.dump())));
  };
  same(net_config_preset("ddpmpp", 32, 3), vp, 0);
  same(net_config_preset("ncsnpp", 32, 3), ve, 0);
  same(net_config_preset("adm", 64, 3), adm, 1000);
}

// EDM seeds its init with torch.manual_seed; LibTorch's CPU generator gives the same draws, so a fresh net built
// under the golden init seed and perturbed as documented must reproduce the stored weights.
TEST(NetsInit, SeededInitReproducesEdm) {
  for (const char* name : {"ddpmpp_uncond", "ddpmpp_cond", "ncsnpp_uncond", "adm_cond"}) {
    SCOPED_TRACE(name);
    auto file = load_golden(std::string(name) + "_weights.safetensors");
    at::manual_seed(std::stoll(file.meta("init_seed")));
    auto net = make_unet(net_config_from_json(file.meta("config")));
    auto gen = at::detail::createCPUGenerator(std::stoll(file.meta("perturb_seed")));
    at::NoGradGuard no_grad;
    for (auto& p : net->named_parameters()) p.value().add_(at::randn(p.value().sizes(), gen) * 0.05);
    double worst = 0;
    for (const auto& [key, t] : state_dict(*net)) {
      ASSERT_TRUE(file.has(key)) << key;
      worst = std::max(worst, pidistill::test::rel_err(t, file.get(key)));
    }
    std::cout << "[ rel err ] " << name << " init+perturb vs stored weights: " << worst << "\n";
    EXPECT_LE(worst, 1e-6);
  }
}

TEST(NetsInit, SeededUNetBlockInitReproducesEdm) {
  auto file = load_golden("unetblock_adm2head_weights.safetensors");
  at::manual_seed(1004);
  UNetBlockOptions opt;
  opt.emb_channels = 64;
  opt.attention = true;
  opt.num_heads = 2;
  opt.init = {"kaiming_uniform", std::sqrt(1.0 / 3), std::sqrt(1.0 / 3)};
  opt.init_zero = {"kaiming_uniform", 0, 0};
  UNetBlock block(32, 64, opt);
  auto gen = at::detail::createCPUGenerator(2004);
  at::NoGradGuard no_grad;
  double worst = 0;
  for (auto& p : block.named_parameters()) {
    p.value().add_(at::randn(p.value().sizes(), gen) * 0.05);
    worst = std::max(worst, pidistill::test::rel_err(p.value(), file.get(p.key())));
  }
  std::cout << "[ rel err ] UNetBlock init+perturb vs stored weights: " << worst << "\n";
  EXPECT_LE(worst, 1e-6);
}
