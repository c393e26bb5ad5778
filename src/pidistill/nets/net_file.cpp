#include "pidistill/nets/net_file.h"

#include "pidistill/io/torch_pickle.h"
#include "pidistill/util/error.h"
#include "pidistill/util/sha256.h"

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include <set>
#include <sstream>

namespace pidistill {

namespace {

constexpr int64_t kNearMissElements = int64_t(1) << 24;  // 64 MB of float32: built to name the missing key

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? "," : "") << s[i];
  o << "]";
  return o.str();
}

// PID's loader: key.replace('model.', '') removes every occurrence, not only the prefix.
std::string strip_model(std::string key) {
  const std::string m = "model.";
  for (size_t pos; (pos = key.find(m)) != std::string::npos;) key.erase(pos, m.size());
  return key;
}

// Own parameters, then own buffers, module by module in pre-order: the order of PyTorch's state_dict().
NamedTensors module_state(const torch::nn::Module& net) {
  NamedTensors out;
  for (const auto& item : net.named_modules("", /*include_self=*/true)) {
    const std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false)) out.emplace_back(prefix + p.key(), p.value());
    for (const auto& b : item.value()->named_buffers(/*recurse=*/false)) out.emplace_back(prefix + b.key(), b.value());
  }
  return out;
}

}  // namespace

void load_state_dict(UNet& net, const NamedTensors& state, const std::string& where) {
  auto own = module_state(net);
  std::map<std::string, at::Tensor> given;
  for (const auto& [name, t] : state) {
    if (!given.emplace(name, t).second) fail(where, "duplicate key '" + name + "'");
  }
  std::set<std::string> expected;
  for (const auto& [name, dst] : own) {
    expected.insert(name);
    auto it = given.find(name);
    if (it == given.end())
      fail(where, "missing key '" + name + "' for a " + net.config.model_type +
                      " with this config (hint: the file's architecture differs; check --config/--arch)");
    const auto& src = it->second;
    if (!src.defined() || !at::isFloatingType(src.scalar_type()))
      fail(where, "key '" + name + "' has non-float dtype " + std::string(src.defined() ? c10::toString(src.scalar_type()) : "undefined") +
                      " (network weights must be float16/bfloat16/float32/float64)");
    if (src.sizes() != dst.sizes())
      fail(where, "shape mismatch for key '" + name + "': file has " + shape_str(src.sizes()) + ", network expects " +
                      shape_str(dst.sizes()) + " (hint: check the config's channels and resolution)");
  }
  for (const auto& [name, t] : state) {
    if (!expected.count(name))
      fail(where, "unexpected key '" + name + "' " + shape_str(t.sizes()) + " not in a " + net.config.model_type +
                      " with this config (hint: check label_dim, augment_dim and the architecture options)");
  }
  // All checks passed: copy, so that a failure never leaves the network half-loaded.
  at::NoGradGuard no_grad;
  for (auto& [name, dst] : own) dst.copy_(given.at(name));
}

std::map<std::string, std::string> edm_net_metadata(const EdmPickle& edm) {
  NetConfig config;
  try {
    config = net_config_from_edm_kwargs(edm.init_kwargs, edm.model_class);
  } catch (const Error& e) {
    fail(edm.path, edm.precond_class + "(" + edm.model_class + ") _init_kwargs: " + e.what());
  }
  nlohmann::json constants = nlohmann::json::object();
  for (const auto& [k, v] : edm.constants) constants[k] = v;
  return {{"config", net_config_to_json(config)},  {"precond", edm.precond},
          {"precond_constants", constants.dump()}, {"edm_class", edm.precond_class},
          {"edm_init_kwargs", edm.init_kwargs},    {"use_fp16", edm.use_fp16 ? "true" : "false"}};
}

LoadedNet load_net(const std::string& path, const std::optional<NetConfig>& config_override) {
  NamedTensors tensors;
  std::map<std::string, std::string> metadata;
  if (is_torch_file(path)) {
    const TorchPickle file = read_torch_pickle(path);
    if (auto edm = edm_pickle_from(file)) {
      tensors = std::move(edm->state);
      metadata = edm_net_metadata(*edm);
    } else {
      tensors = flatten_tensors(file.root, path);
    }
  } else {
    auto file = read_safetensors(path);
    tensors = std::move(file.tensors);
    metadata = std::move(file.metadata);
  }
  return load_net_from(std::move(tensors), metadata, path, config_override);
}

NetConfig net_config_from_metadata(const std::string& path, const std::string& config_json) {
  try {
    return net_config_from_json(config_json);
  } catch (const Error& e) {
    fail(path, std::string("metadata \"config\": ") + e.what());
  }
}

LoadedNet load_net_from(NamedTensors tensors, const std::map<std::string, std::string>& metadata,
                        const std::string& path, const std::optional<NetConfig>& config_override) {
  LoadedNet loaded;
  if (config_override) {
    loaded.config = *config_override;
    validate(loaded.config);
  } else if (metadata.count("config")) {
    loaded.config = net_config_from_metadata(path, metadata.at("config"));
  } else {
    fail(path, "no network config in the file (no metadata \"config\"); pass --config JSON or --arch ddpmpp|ncsnpp|adm");
  }
  NamedTensors state;
  for (auto& [name, t] : tensors) {
    std::string key = strip_model(name);
    // Why: PID drops EDM's augmentation mapping, which a student/teacher without augment_dim does not have.
    if (loaded.config.augment_dim == 0 && key.find("map_augment") != std::string::npos) continue;
    state.emplace_back(key, t);
  }
  // Why count first: a config of a few bytes can describe a network of many gigabytes; the strict load below
  // needs every element from the file, so a file holding far fewer is refused before anything is allocated.
  // A near miss (a key or two missing) is built, so that the strict load names the missing key.
  validate(loaded.config);
  int64_t file_elements = 0;
  for (const auto& [name, t] : state) file_elements += t.numel();
  const int64_t needed = unet_tensor_elements(loaded.config);
  if (needed > file_elements && needed - file_elements > file_elements + kNearMissElements)
    fail(path, "the config describes a " + loaded.config.model_type + " of " + std::to_string(needed) +
                   " parameter and buffer elements but the file's tensors hold only " +
                   std::to_string(file_elements) +
                   " (damaged file, or a config that does not match it; check --config/--arch)");
  loaded.net = make_unet(loaded.config);
  load_state_dict(*loaded.net, state, path);
  loaded.net->eval();
  for (const auto& [k, v] : metadata) {
    if (k == "config") continue;
    if (k == "precond") loaded.precond = v;
    else loaded.metadata[k] = v;
  }
  return loaded;
}

NamedTensors state_dict(const UNet& net) {
  NamedTensors out;
  for (auto& [name, t] : module_state(net)) out.emplace_back("model." + name, t.detach());
  return out;
}

std::string network_sha256(const LoadedNet& loaded) {
  Sha256 sha;
  const auto constants = loaded.metadata.find("precond_constants");
  sha.update(net_config_to_json(loaded.config) + "\n" + loaded.precond + "\n" +
             (constants == loaded.metadata.end() ? std::string() : constants->second) + "\n");
  for (const auto& [name, t] : module_state(*loaded.net)) {
    const at::Tensor cpu = t.detach().to(at::kCPU).contiguous();
    std::string head = name + " " + std::string(c10::toString(cpu.scalar_type()));
    for (int64_t d : cpu.sizes()) head += " " + std::to_string(d);
    sha.update(head + "\n");
    sha.update(cpu.data_ptr(), size_t(cpu.nbytes()));
  }
  return sha.hex();
}

void save_net(const std::string& path, const UNet& net, const std::string& precond,
              const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> metadata = extra;
  metadata["config"] = net_config_to_json(net.config);
  metadata["precond"] = precond;
  write_safetensors(path, state_dict(net), metadata);
}

}  // namespace pidistill
