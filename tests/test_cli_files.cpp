// `pidistill convert` and `inspect` on the golden weight files, and the one-line errors of bad input.
#include "test_cli_util.h"
#include "test_common.h"

#include "pidistill/nets/net_config.h"
#include "pidistill/util/files.h"

#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace pidistill::test {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The golden .pt files hold the same tensors as the safetensors weights; converted with the config the
// safetensors metadata gives, every tensor must come out bit-identical, under the same name.
TEST(ConvertCli, TorchCheckpointGivesTheSameTensors) {
  const TensorFile reference = load_golden("ddpmpp_uncond_weights.safetensors");
  for (const std::string pt : {"ddpmpp_uncond_state_dict.pt", "ddpmpp_uncond_plain_dict.pt"}) {
    SCOPED_TRACE(pt);
    const std::string out = scratch_dir() + "/converted_" + pt + ".safetensors";
    const CliResult result = run_cli("convert " + quoted(golden(pt)) + " " + quoted(out) + " --config " +
                                     quoted(reference.meta("config")));
    ASSERT_EQ(result.code, 0) << result.output;

    const TensorFile converted = read_safetensors(out);
    ASSERT_EQ(converted.tensors.size(), reference.tensors.size());
    for (const auto& [name, tensor] : reference.tensors) {
      ASSERT_TRUE(converted.has(name)) << name;
      EXPECT_TRUE(converted.get(name).equal(tensor)) << name;
    }
    EXPECT_EQ(converted.meta("precond"), "edm");
    // The file now describes itself: converting it again needs no --config.
    const CliResult again =
        run_cli("convert " + quoted(out) + " " + quoted(out + ".again") + " --precond vp");
    ASSERT_EQ(again.code, 0) << again.output;
    EXPECT_EQ(read_safetensors(out + ".again").meta("precond"), "vp");
  }
}

// README's convert example: the train.py-style size options (--blocks and --attn too, as train has them)
// describe the golden network without a JSON config: the same tensors and the same config as its metadata.
TEST(ConvertCli, PresetWithTrainsSizeOptionsDescribesTheNetwork) {
  const TensorFile reference = load_golden("ddpmpp_uncond_weights.safetensors");
  const std::string out = scratch_dir() + "/preset.safetensors";
  const CliResult result =
      run_cli("convert " + quoted(golden("ddpmpp_uncond_state_dict.pt")) + " " + quoted(out) +
              " --arch ddpmpp --resolution 16 --cbase 16 --cres 1,2 --blocks 1 --attn 8 --dropout 0 --augment-dim 0");
  ASSERT_EQ(result.code, 0) << result.output;
  const TensorFile converted = read_safetensors(out);
  EXPECT_EQ(net_config_to_json(net_config_from_json(converted.meta("config"))),
            net_config_to_json(net_config_from_json(reference.meta("config"))));
  ASSERT_EQ(converted.tensors.size(), reference.tensors.size());
  for (const auto& [name, tensor] : reference.tensors) EXPECT_TRUE(converted.get(name).equal(tensor)) << name;

  EXPECT_ONE_LINE_ERROR(run_cli("convert " + quoted(golden("ddpmpp_uncond_state_dict.pt")) + " " +
                                quoted(out + ".bad") + " --arch ddpmpp --attn 16,x"));
  EXPECT_ONE_LINE_ERROR(run_cli("convert " + quoted(golden("ddpmpp_uncond_state_dict.pt")) + " " +
                                quoted(out + ".bad") + " --blocks 1"));  // nothing to apply it to
}

TEST(ConvertCli, TorchCheckpointWithoutConfigIsAnError) {
  const CliResult result = run_cli("convert " + quoted(golden("ddpmpp_uncond_state_dict.pt")) + " " +
                                   quoted(scratch_dir() + "/x.st"));
  EXPECT_ONE_LINE_ERROR(result);
  EXPECT_NE(result.output.find("--config"), std::string::npos) << result.output;
}

// Parameters exclude buffers: EDM's resample filters and NCSN++'s Fourier frequencies.
int64_t count_parameters(const TensorFile& file) {
  int64_t n = 0;
  for (const auto& [name, tensor] : file.tensors)
    if (!ends_with(name, "resample_filter") && !ends_with(name, "map_noise.freqs")) n += tensor.numel();
  return n;
}

TEST(InspectCli, PrintsParameterCount) {
  for (const std::string net : {"ddpmpp_uncond", "ncsnpp_uncond", "adm_cond"}) {
    SCOPED_TRACE(net);
    const TensorFile file = load_golden(net + "_weights.safetensors");
    const CliResult result = run_cli("inspect " + quoted(golden(net + "_weights.safetensors")));
    ASSERT_EQ(result.code, 0) << result.output;
    EXPECT_NE(result.output.find("\nparameters: " + std::to_string(count_parameters(file)) + "\n"),
              std::string::npos)
        << result.output;
    EXPECT_NE(result.output.find("\ntensors: " + std::to_string(file.tensors.size()) + " "),
              std::string::npos)
        << result.output;
    EXPECT_NE(result.output.find(file.tensors.front().first), std::string::npos) << result.output;
    EXPECT_NE(result.output.find(file.tensors.back().first), std::string::npos) << result.output;
  }
}

TEST(InspectCli, TorchCheckpointWithoutConfigStillListsTensors) {
  const CliResult result = run_cli("inspect " + quoted(golden("ddpmpp_uncond_state_dict.pt")));
  ASSERT_EQ(result.code, 0) << result.output;
  EXPECT_NE(result.output.find("model_type: unknown"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("\ntensors: 146 "), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("model.map_layer0.weight F32 [64, 16]"), std::string::npos) << result.output;
}

TEST(ErrorsCli, MissingNetFile) {
  const std::string missing = scratch_dir() + "/no_such_net.safetensors";
  const CliResult result = run_cli("denoise --net " + quoted(missing) + " --in " +
                                   quoted(golden("ddpmpp_uncond_io_f32.safetensors")) + " --out " +
                                   quoted(scratch_dir() + "/d.safetensors"));
  EXPECT_ONE_LINE_ERROR(result);
  EXPECT_NE(result.output.find(missing), std::string::npos) << result.output;
}

TEST(ErrorsCli, InputIsNotSafetensors) {
  const std::string text = scratch_dir() + "/not_tensors.safetensors";
  std::ofstream(text) << "this is a text file, not a safetensors file\n";
  const CliResult result =
      run_cli("denoise --net " + quoted(golden("ddpmpp_uncond_weights.safetensors")) + " --in " +
              quoted(text) + " --out " + quoted(scratch_dir() + "/d.safetensors"));
  EXPECT_ONE_LINE_ERROR(result);
  EXPECT_NE(result.output.find(text), std::string::npos) << result.output;
}

TEST(ErrorsCli, InputWithoutX) {
  const TensorFile io = load_golden("ddpmpp_uncond_io_f32.safetensors");
  const std::string in = scratch_dir() + "/sigma_only.safetensors";
  write_safetensors(in, {{"sigma", io.get("sigma")}});
  const std::string out = scratch_dir() + "/never_written.safetensors";
  const CliResult result = run_cli("denoise --net " + quoted(golden("ddpmpp_uncond_weights.safetensors")) +
                                   " --in " + quoted(in) + " --out " + quoted(out));
  EXPECT_ONE_LINE_ERROR(result);
  EXPECT_NE(result.output.find("'x'"), std::string::npos) << result.output;
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(ErrorsCli, WrongImageShape) {
  const TensorFile io = load_golden("ddpmpp_uncond_io_f32.safetensors");
  const std::string in = scratch_dir() + "/x_8x8.safetensors";
  write_safetensors(in, {{"x", io.get("x").narrow(2, 0, 8)}, {"sigma", io.get("sigma")}});
  const CliResult result =
      run_cli("denoise --net " + quoted(golden("ddpmpp_uncond_weights.safetensors")) + " --in " + quoted(in) +
              " --out " + quoted(scratch_dir() + "/d.safetensors"));
  EXPECT_ONE_LINE_ERROR(result);
  EXPECT_NE(result.output.find("[4, 3, 8, 16]"), std::string::npos) << result.output;
}

// A 216-byte safetensors holding only a config that asks for a 4096-channel network once took 4.7 GB: now every
// command that builds a network from it refuses it first, in one line naming the file.
TEST(ErrorsCli, ConfigOnlyFileAskingForAHugeNetwork) {
  const std::string path = scratch_dir() + "/config_only.safetensors";
  write_safetensors(path, {}, {{"config", R"({"model_channels":4096,"channel_mult":[1,2,2,2],"num_blocks":4})"}});
  for (const std::string command : {"inspect " + quoted(path),
                                    "convert " + quoted(path) + " " + quoted(scratch_dir() + "/c.safetensors"),
                                    "generate --net " + quoted(path) + " --seeds 0 --steps 2 --out " +
                                        quoted(scratch_dir() + "/g.safetensors")}) {
    SCOPED_TRACE(command);
    const CliResult result = run_cli(command);
    EXPECT_ONE_LINE_ERROR(result);
    EXPECT_NE(result.output.find(path + ": the config describes a SongUNet of"), std::string::npos)
        << result.output;
  }
}

// A config in a file's metadata or a --config file that our networks refuse names the file (found by
// tests/hostile/sweep.py: inspect said only "net config: ..."); an integer beyond int no longer wraps to 0.
TEST(ErrorsCli, BadConfigNamesTheFileItCameFrom) {
  const std::string path = scratch_dir() + "/bad_config.safetensors";
  const std::string out = quoted(scratch_dir() + "/c.safetensors");
  for (const auto& [config, words] : std::vector<std::pair<std::string, std::string>>{
           {"null", "got null"},
           {R"({"model_channels":"4"})", "'model_channels' must be an integer"},
           {R"({"label_dim":1099511627776})", "'label_dim' is 1099511627776, beyond any network"}}) {
    write_safetensors(path, {{"x", at::zeros({1})}}, {{"config", config}});
    for (const std::string command : {"inspect " + quoted(path), "convert " + quoted(path) + " " + out,
                                      "generate --net " + quoted(path) + " --seeds 0 --out " + out}) {
      SCOPED_TRACE(command);
      const CliResult result = run_cli(command);
      EXPECT_ONE_LINE_ERROR(result);
      EXPECT_NE(result.output.find(path + ": metadata \"config\""), std::string::npos) << result.output;
      EXPECT_NE(result.output.find(words), std::string::npos) << result.output;
    }
  }
  const std::string json_file = scratch_dir() + "/bad_config.json";
  std::ofstream(json_file) << "[1, 2]";
  const CliResult result = run_cli("inspect " + quoted(golden("ddpmpp_uncond_weights.safetensors")) +
                                   " --config " + quoted(json_file));
  EXPECT_ONE_LINE_ERROR(result);
  EXPECT_NE(result.output.find("--config " + json_file + ": net config: expected a JSON object"),
            std::string::npos)
      << result.output;
}

TEST(ErrorsCli, UnknownOptionAndBadPrecond) {
  EXPECT_ONE_LINE_ERROR(run_cli("denoise --no-such-option"));
  EXPECT_ONE_LINE_ERROR(run_cli("convert " + quoted(golden("ddpmpp_uncond_weights.safetensors")) + " " +
                                quoted(scratch_dir() + "/p.safetensors") + " --precond foo"));
  EXPECT_ONE_LINE_ERROR(
      run_cli("inspect " + quoted(golden("ddpmpp_uncond_weights.safetensors")) + " --cbase 64"));
}

}  // namespace
}  // namespace pidistill::test
