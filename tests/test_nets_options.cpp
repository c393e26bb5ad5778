// Config parsing, strict loading with one-line errors, save/load round trip, and the EDM options the golden
// files do not cover (skip encoder/decoder, dropout, label dropout, other image sizes).
#include "pidistill/nets/net_file.h"
#include "pidistill/util/error.h"
#include "test_common.h"

#include <ATen/ATen.h>

#include <chrono>
#include <filesystem>

using namespace pidistill;
using pidistill::test::expect_error;
using pidistill::test::golden;
using pidistill::test::load_golden;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  auto dir = fs::temp_directory_path() / ("pidistill_test_nets_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

NetConfig tiny(const std::string& json) {
  NetConfig c = net_config_from_json(json);
  return c;
}

const char* kTinySong =
    R"({"img_resolution":16,"img_channels":3,"model_channels":16,"channel_mult":[1,2],"num_blocks":1,"attn_resolutions":[8],"dropout":0})";

// Adds seeded N(0, 0.05^2) noise to every parameter so zero-initialised layers do not hide bugs.
void perturb(UNet& net, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  at::NoGradGuard no_grad;
  for (auto& p : net.parameters()) p.add_(at::randn(p.sizes(), gen) * 0.05);
}

}  // namespace

TEST(NetConfig, DefaultsPerModelTypeAndFp16Ignored) {
  auto song = net_config_from_json("{}");
  EXPECT_EQ(song.model_type, "SongUNet");
  EXPECT_EQ(song.channel_mult, (std::vector<int>{1, 2, 2, 2}));
  auto adm = net_config_from_json(R"({"model_type":"DhariwalUNet","use_fp16":true,"img_resolution":64})");
  EXPECT_EQ(adm.model_channels, 192);
  EXPECT_EQ(adm.channel_mult, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(adm.num_blocks, 3);
  EXPECT_EQ(adm.attn_resolutions, (std::vector<int>{32, 16, 8}));
  EXPECT_DOUBLE_EQ(adm.dropout, 0.10);
  for (const char* arch : {"ddpmpp", "ncsnpp", "adm"}) {
    auto c = net_config_preset(arch, 32, 3);
    EXPECT_EQ(net_config_to_json(net_config_from_json(net_config_to_json(c))), net_config_to_json(c)) << arch;
  }
  EXPECT_EQ(net_config_preset("ddpmpp", 32, 3).augment_dim, 9);
  EXPECT_DOUBLE_EQ(net_config_preset("ncsnpp", 32, 3).dropout, 0.13);
}

TEST(NetConfig, BadOptionsNameTheKey) {
  expect_error([] { net_config_from_json(R"({"model_channels":16,"num_heads":2})"); }, {"num_heads"});
  expect_error([] { net_config_from_json(R"({"model_type":"DhariwalUNet","embedding_type":"fourier"})"); },
               {"embedding_type", "SongUNet"});
  expect_error([] { net_config_from_json(R"({"encoder_type":"fancy"})"); }, {"encoder_type", "fancy"});
  expect_error([] { net_config_from_json(R"({"model_type":"UNet3"})"); }, {"model_type"});
  expect_error([] { net_config_from_json(R"({"channel_mult":"2,2"})"); }, {"channel_mult"});
  expect_error([] { net_config_from_json(R"({"img_resolution":30,"channel_mult":[1,2,2]})"); }, {"img_resolution"});
  expect_error([] { net_config_from_json("{not json"); }, {"JSON"});
  expect_error([] { net_config_preset("dit", 32, 3); }, {"dit"});
}

TEST(NetFile, StrictLoadingErrorsNameFileAndKey) {
  auto file = load_golden("ddpmpp_uncond_weights.safetensors");
  auto dir = temp_dir();
  auto write = [&](const std::string& name, NamedTensors t, bool with_config = true) {
    std::string path = (dir / name).string();
    std::map<std::string, std::string> meta;
    if (with_config) meta["config"] = file.meta("config");
    write_safetensors(path, t, meta);
    return path;
  };
  // Missing key.
  auto t = file.tensors;
  t.erase(t.begin() + 5);
  std::string missing_name = file.tensors[5].first.substr(6);  // without 'model.'
  auto p1 = write("missing.safetensors", t);
  expect_error([&] { load_net(p1); }, {p1, "missing key", missing_name});
  // Unexpected key.
  t = file.tensors;
  t.emplace_back("model.enc.extra.weight", at::zeros({2, 2}));
  auto p2 = write("unexpected.safetensors", t);
  expect_error([&] { load_net(p2); }, {p2, "unexpected key", "enc.extra.weight"});
  // Shape mismatch.
  t = file.tensors;
  t[0].second = at::zeros({3, 3});
  auto p3 = write("shape.safetensors", t);
  expect_error([&] { load_net(p3); }, {p3, "shape mismatch", t[0].first.substr(6), "[3,3]"});
  // Non-float dtype.
  t = file.tensors;
  t[1].second = t[1].second.to(at::kLong);
  auto p4 = write("dtype.safetensors", t);
  expect_error([&] { load_net(p4); }, {p4, t[1].first.substr(6), "dtype"});
  // No config: an error asking for one, and loading works once one is given.
  auto p5 = write("noconfig.safetensors", file.tensors, false);
  expect_error([&] { load_net(p5); }, {p5, "config", "--arch"});
  EXPECT_NO_THROW(load_net(p5, net_config_from_json(file.meta("config"))));
  // A config in the metadata with an unknown key.
  std::string p6 = (dir / "badconfig.safetensors").string();
  write_safetensors(p6, file.tensors, {{"config", R"({"model_channels":16,"wibble":3})"}});
  expect_error([&] { load_net(p6); }, {p6, "wibble"});
  fs::remove_all(dir);
}

// A config of a few bytes can ask for a network of gigabytes: the file must hold its tensors, checked before
// the network is built (a 216-byte file once took 4.7 GB here).
TEST(NetFile, ConfigAskingForMoreThanTheFileHoldsIsRefusedBeforeBuilding) {
  auto dir = temp_dir();
  const std::string path = (dir / "config_only.safetensors").string();
  write_safetensors(path, {}, {{"config", R"({"model_channels":4096,"channel_mult":[1,2,2,2],"num_blocks":4})"}});
  ASSERT_LT(fs::file_size(path), 300u);
  const auto t0 = std::chrono::steady_clock::now();
  expect_error([&] { load_net(path); }, {path, "SongUNet of", "hold only 0", "--config"});
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  // The count is exact: it equals the elements of the network that make_unet builds.
  auto file = load_golden("ddpmpp_uncond_weights.safetensors");
  const NetConfig config = net_config_from_json(file.meta("config"));
  int64_t built = 0;
  for (const auto& [name, t] : state_dict(*make_unet(config))) built += t.numel();
  EXPECT_EQ(unet_tensor_elements(config), built);
  // Hostile sizes are refused by validate before any module exists.
  expect_error([] { net_config_from_json(R"({"num_blocks":100000000})"); }, {"num_blocks", "at most"});
  expect_error([] { net_config_from_json(R"({"channel_mult":[1,2147483647]})"); }, {"channel_mult", "at most"});
  fs::remove_all(dir);
}

TEST(NetFile, MapAugmentDroppedOnlyWithoutAugmentDim) {
  auto file = load_golden("ddpmpp_cond_weights.safetensors");
  auto config = net_config_from_json(file.meta("config"));
  ASSERT_EQ(config.augment_dim, 9);
  auto with = load_net(golden("ddpmpp_cond_weights.safetensors"));
  config.augment_dim = 0;
  auto without = load_net(golden("ddpmpp_cond_weights.safetensors"), config);  // PID's teacher: map_augment dropped
  EXPECT_EQ(state_dict(*with.net).size(), state_dict(*without.net).size() + 1);
  // F without augment labels is the same network.
  auto io = load_golden("ddpmpp_cond_io_f32.safetensors");
  at::NoGradGuard no_grad;
  auto a = with.net->forward(io.get("F.x_in"), io.get("F.noise_labels"), io.get("class_labels"));
  auto b = without.net->forward(io.get("F.x_in"), io.get("F.noise_labels"), io.get("class_labels"));
  EXPECT_TRUE(at::equal(a, b));
}

TEST(NetFile, SaveLoadRoundTrip) {
  auto loaded = load_net(golden("ncsnpp_uncond_weights.safetensors"));
  auto path = (temp_dir() / "roundtrip.safetensors").string();
  save_net(path, *loaded.net, "ve", {{"note", "round trip"}});
  auto again = load_net(path);
  EXPECT_EQ(again.precond, "ve");
  EXPECT_EQ(again.metadata.at("note"), "round trip");
  EXPECT_EQ(net_config_to_json(again.config), net_config_to_json(loaded.config));
  auto a = state_dict(*loaded.net), b = state_dict(*again.net);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(at::equal(a[i].second, b[i].second)) << a[i].first;
  }
  EXPECT_TRUE(again.net->named_buffers().contains("map_noise.freqs"));
  fs::remove(path);
}

// Options the golden files do not exercise: shapes, key names, and f32 vs f64 agreement.
TEST(NetOptions, SkipEncoderAndDecoder) {
  auto c = tiny(kTinySong);
  c.encoder_type = "skip";
  c.decoder_type = "skip";
  c.resample_filter = {1, 3, 3, 1};
  at::manual_seed(7);
  auto net = make_unet(c);
  perturb(*net, 8);
  net->eval();
  std::set<std::string> names;
  for (const auto& [k, t] : state_dict(*net)) names.insert(k);
  for (const char* k : {"model.enc.8x8_aux_down.resample_filter", "model.enc.8x8_aux_skip.weight",
                        "model.dec.16x16_aux_up.resample_filter", "model.dec.8x8_aux_norm.weight",
                        "model.dec.8x8_aux_conv.weight", "model.dec.16x16_aux_conv.bias"})
    EXPECT_TRUE(names.count(k)) << k;
  auto gen = at::detail::createCPUGenerator(9);
  auto x = at::randn({2, 3, 16, 16}, gen, at::kDouble);
  auto n = at::randn({2}, gen, at::kDouble);
  at::NoGradGuard no_grad;
  auto y32 = net->forward(x.to(at::kFloat), n.to(at::kFloat));
  net->to(at::kDouble);
  auto y64 = net->forward(x, n);
  EXPECT_EQ(y64.sizes(), x.sizes());
  EXPECT_GT(y64.abs().max().item<double>(), 0.1);
  EXPECT_CLOSE(y32, y64, 1e-5);
}

TEST(NetOptions, OtherImageSizesAndChannels) {
  for (auto [res, ch, type] : {std::tuple{32, 1, "SongUNet"}, std::tuple{28, 1, "SongUNet"},
                               std::tuple{28, 1, "DhariwalUNet"}, std::tuple{32, 3, "DhariwalUNet"}}) {
    SCOPED_TRACE(std::to_string(res) + "x" + std::to_string(res) + " " + type);
    NetConfig c = net_config_from_json(std::string(R"({"model_type":")") + type + R"(","model_channels":64,)" +
                                       R"("channel_mult":[1,1],"num_blocks":1,"attn_resolutions":[14,16],"dropout":0,)" +
                                       R"("label_dim":10})");
    c.img_resolution = res;
    c.img_channels = ch;
    validate(c);
    at::manual_seed(11);
    auto net = make_unet(c);
    perturb(*net, 12);
    net->eval();
    bool has_attention = false;
    for (const auto& [k, t] : state_dict(*net)) has_attention |= k.find("qkv") != std::string::npos;
    EXPECT_TRUE(has_attention);  // 64 channels: one head in ADM too
    auto gen = at::detail::createCPUGenerator(13);
    auto x = at::randn({2, ch, res, res}, gen, at::kDouble);
    auto n = at::randn({2}, gen, at::kDouble);
    auto labels = at::eye(10, at::kDouble).slice(0, 0, 2);
    at::NoGradGuard no_grad;
    auto y32 = net->forward(x.to(at::kFloat), n.to(at::kFloat), labels.to(at::kFloat));
    net->to(at::kDouble);
    auto y64 = net->forward(x, n, labels);
    EXPECT_EQ(y64.sizes(), x.sizes());
    EXPECT_CLOSE(y32, y64, 1e-5);
  }
}

TEST(NetOptions, DropoutOnlyInTrainingAndSeeded) {
  auto c = tiny(kTinySong);
  c.dropout = 0.5;
  at::manual_seed(21);
  auto net = make_unet(c);
  perturb(*net, 22);
  auto gen = at::detail::createCPUGenerator(23);
  auto x = at::randn({2, 3, 16, 16}, gen);
  auto n = at::randn({2}, gen);
  at::NoGradGuard no_grad;
  net->eval();
  auto e1 = net->forward(x, n), e2 = net->forward(x, n);
  EXPECT_TRUE(at::equal(e1, e2));
  net->train();
  net->generator = at::detail::createCPUGenerator(24);
  auto t1 = net->forward(x, n);
  net->generator = at::detail::createCPUGenerator(24);
  auto t2 = net->forward(x, n);
  EXPECT_TRUE(at::equal(t1, t2));  // same generator seed, same masks
  EXPECT_GT((t1 - e1).abs().max().item<double>(), 1e-3);
}

TEST(NetOptions, LabelDropoutInTraining) {
  for (const char* type : {"SongUNet", "DhariwalUNet"}) {
    SCOPED_TRACE(type);
    NetConfig c = net_config_from_json(std::string(R"({"model_type":")") + type + R"(","img_resolution":16,)" +
                                       R"("model_channels":16,"channel_mult":[1,2],"num_blocks":1,"attn_resolutions":[],)" +
                                       R"("dropout":0,"label_dim":10,"label_dropout":1.0})");
    at::manual_seed(31);
    auto net = make_unet(c);
    perturb(*net, 32);
    auto gen = at::detail::createCPUGenerator(33);
    auto x = at::randn({2, 3, 16, 16}, gen);
    auto n = at::randn({2}, gen);
    auto labels = at::eye(10).slice(0, 3, 5);
    at::NoGradGuard no_grad;
    net->eval();
    auto with_labels = net->forward(x, n, labels);
    auto no_labels = net->forward(x, n, at::zeros_like(labels));
    net->train();
    auto dropped = net->forward(x, n, labels);  // label_dropout 1: every label dropped
    EXPECT_TRUE(at::allclose(dropped, no_labels));
    EXPECT_GT((with_labels - no_labels).abs().max().item<double>(), 1e-4);
  }
}
