#include "cli/cli_util.h"

#include "pidistill/io/torch_pickle.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <filesystem>
#include <sstream>
#include <vector>

namespace pidistill::cli {

// Options a config can be overridden with; --resolution and --channels also size an --arch preset.
static const char* const kOverrides[] = {"--resolution", "--channels", "--label-dim", "--augment-dim", "--cbase",
                                         "--cres",       "--blocks",   "--attn",      "--dropout"};

void add_arch_override_options(CLI::App& cmd, ArchOverrides& o) {
  cmd.add_option("--cbase", o.cbase, "Channel multiplier model_channels (default: the preset's)")
      ->check(CLI::Range(1, 4096));
  cmd.add_option("--cres", o.cres, "Channels per resolution channel_mult, e.g. 1,2,2 (default: the preset's)")
      ->delimiter(',');
  cmd.add_option("--blocks", o.blocks, "Residual blocks per resolution num_blocks (default: the preset's)")
      ->check(CLI::Range(1, 64));
  ArchOverrides* target = &o;
  cmd.add_option_function<std::string>(
      "--attn",
      [target](const std::string& text) {
        target->attn.clear();
        target->attn_given = true;
        std::stringstream in(text);
        for (std::string item; std::getline(in, item, ',');) {
          if (item.empty()) continue;
          size_t used = 0;
          int value = 0;
          try {
            value = std::stoi(item, &used);
          } catch (const std::exception&) {
          }
          if (used != item.size() || value <= 0)
            throw CLI::ValidationError("--attn", "'" + item + "' is not a resolution; e.g. --attn 16,8");
          target->attn.push_back(value);
        }
      },
      "Attention resolutions attn_resolutions, e.g. 16 or 16,8; '' for none (default: the preset's)");
}

void apply_arch_overrides(const ArchOverrides& o, const CLI::App& cmd, NetConfig& config) {
  if (cmd.count("--cbase")) config.model_channels = o.cbase;
  if (cmd.count("--cres")) config.channel_mult = o.cres;
  if (cmd.count("--blocks")) config.num_blocks = o.blocks;
  if (o.attn_given) config.attn_resolutions = o.attn;
}

void add_net_options(CLI::App& cmd, NetOptions& o) {
  o.cmd = &cmd;
  cmd.add_option("--config", o.config, "Network config: JSON text or a JSON file, EDM keyword names");
  cmd.add_option("--arch", o.arch, "EDM train.py preset: ddpmpp | ncsnpp | adm")
      ->check(CLI::IsMember({"ddpmpp", "ncsnpp", "adm"}));
  cmd.add_option("--resolution", o.resolution, "Image resolution")->capture_default_str();
  cmd.add_option("--channels", o.channels, "Color channels")->capture_default_str();
  cmd.add_option("--label-dim", o.label_dim, "Number of class labels, 0 = unconditional")
      ->capture_default_str();
  cmd.add_option("--augment-dim", o.augment_dim,
                 "Augmentation label size, 0 = none (default: the preset's, 9 for ddpmpp/ncsnpp; or the config's)");
  add_arch_override_options(cmd, o.sizes);
  cmd.add_option("--dropout", o.dropout, "Dropout probability (default: the preset's)");
}

std::optional<NetConfig> resolve_net_config(const NetOptions& o) {
  auto given = [&](const char* name) { return o.cmd->count(name) > 0; };
  if (!o.config.empty() && !o.arch.empty()) fail("--config/--arch", "give one of them, not both");
  if (o.config.empty() && o.arch.empty()) {
    for (const char* name : kOverrides)
      if (given(name)) fail(name, "needs --config or --arch to apply to");
    return std::nullopt;
  }
  NetConfig config;
  if (!o.arch.empty()) {
    config = net_config_preset(o.arch, o.resolution, o.channels);
  } else {
    // Why: a JSON object starts with '{'; anything else is taken as the path of a file holding one.
    const size_t first = o.config.find_first_not_of(" \t\n");
    const bool inline_json = first != std::string::npos && o.config[first] == '{';
    try {
      config = net_config_from_json(inline_json ? o.config : read_file(o.config));
    } catch (const Error& e) {
      const std::string what = e.what();
      // Why: the config's own messages say "net config"; the user needs to know it was --config (and which
      // file). read_file's errors already name the file.
      if (!inline_json && what.rfind(o.config + ":", 0) == 0) throw;
      fail(inline_json ? "--config" : "--config " + o.config, what);
    }
  }
  if (given("--resolution")) config.img_resolution = o.resolution;
  if (given("--channels")) config.img_channels = o.channels;
  if (given("--label-dim")) config.label_dim = o.label_dim;
  if (given("--augment-dim")) config.augment_dim = o.augment_dim;
  apply_arch_overrides(o.sizes, *o.cmd, config);
  if (given("--dropout")) config.dropout = o.dropout;
  validate(config);
  return config;
}

TensorFile read_any_tensor_file(const std::string& path) {
  if (is_torch_file(path)) return TensorFile{path, read_torch_checkpoint(path), {}};
  return read_safetensors(path);
}

std::string dtype_name(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return "F32";
    case at::kDouble:
      return "F64";
    case at::kHalf:
      return "F16";
    case at::kBFloat16:
      return "BF16";
    case at::kLong:
      return "I64";
    case at::kInt:
      return "I32";
    case at::kShort:
      return "I16";
    case at::kChar:
      return "I8";
    case at::kByte:
      return "U8";
    case at::kBool:
      return "BOOL";
    default:
      return c10::toString(t.scalar_type());
  }
}

std::string shape_string(const at::Tensor& t) {
  std::ostringstream out;
  out << "[";
  for (int64_t d = 0; d < t.dim(); ++d) out << (d ? ", " : "") << t.size(d);
  out << "]";
  return out.str();
}

std::string bundled_model(const std::string& name) {
  namespace fs = std::filesystem;
  std::vector<fs::path> places;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    places = {exe.parent_path().parent_path() / "models", exe.parent_path() / "models",
              exe.parent_path().parent_path() / "share" / "pidistill" / "models"};  // cmake --install's
  places.push_back(fs::current_path(ec) / "models");
  std::string looked;
  for (const auto& dir : places) {
    if (fs::is_regular_file(dir / name)) return (dir / name).string();
    looked += (looked.empty() ? "" : ", ") + dir.string();
  }
  fail(name, "bundled model not found (looked in " + looked +
                 "); hint: run from the pidistill checkout or give the file's path");
}

c10::Device parse_device(const std::string& name) {
  std::optional<c10::Device> device;
  try {
    device.emplace(name);
  } catch (const std::exception&) {
    fail("--device", "'" + name + "' is not a device; expected cpu, cuda or cuda:N");
  }
  if (device->is_cuda() && !at::hasCUDA())
    fail("--device", name + ": this build's LibTorch has no CUDA or sees no GPU; hint: --device cpu");
  if (!device->is_cpu() && !device->is_cuda()) fail("--device", name + ": only cpu and cuda are supported");
  return *device;
}

}  // namespace pidistill::cli
