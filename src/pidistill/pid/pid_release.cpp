#include "pidistill/pid/pid_release.h"

#include "pidistill/io/torch_pickle.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/util/error.h"

#include <map>

namespace pidistill {

namespace {

using Kind = PyValue::Kind;

bool holds_tensors(const PyValue* dict) {
  for (size_t i = 1; i < dict->items.size(); i += 2)
    if (dict->items[i]->is(Kind::Tensor)) return true;
  return false;
}

std::string top_level_keys(const PyValue* dict) {
  std::string keys;
  for (size_t i = 0; i < dict->items.size() && i < 40; i += 2) {
    const PyValue* k = dict->items[i];
    keys += (keys.empty() ? "'" : ", '") + (k->is(Kind::Str) ? k->s : std::string(kind_name(k->kind))) + "'";
  }
  return keys.empty() ? "none" : keys;
}

void strip_ddp(NamedTensors& tensors) {
  const std::string ddp = "module.";
  for (auto& [name, t] : tensors)
    if (name.compare(0, ddp.size(), ddp) == 0) name.erase(0, ddp.size());
}

}  // namespace

StudentConstants pid_release_constants() {
  StudentConstants c;
  c.T = 80;
  c.sigma_min = 0.002;
  c.sigma_data = 0.5;
  return c;
}

NamedTensors read_pid_state_dict(const std::string& path) {
  NamedTensors tensors;
  if (is_torch_file(path)) {
    const TorchPickle file = read_torch_pickle(path);
    const PyValue* root = file.root;
    if (!root->is(Kind::Dict))
      fail(path, std::string("holds a ") + kind_name(root->kind) + ", not a state dict of PID's SongUNet");
    if (!holds_tensors(root)) {
      // Why these two: training scripts save {'model': sd, ...} or {'state_dict': sd, ...} with options
      // beside.
      const PyValue* inner = nullptr;
      for (const char* key : {"state_dict", "model"}) {
        const PyValue* v = root->get(key);
        if (v && v->is(Kind::Dict) && holds_tensors(v)) {
          inner = v;
          break;
        }
      }
      if (!inner)
        fail(path,
             "no state dict of tensors at the top level nor under 'state_dict' or 'model' (top-level keys: " +
                 top_level_keys(root) + ")");
      root = inner;
    }
    tensors = flatten_tensors(root, path);
  } else {
    tensors = read_safetensors(path).tensors;
  }
  strip_ddp(tensors);
  return tensors;
}

Student load_pid_student(const std::string& path, const std::optional<NetConfig>& config) {
  std::map<std::string, std::string> metadata;
  NamedTensors tensors;
  if (is_torch_file(path)) {
    tensors = read_pid_state_dict(path);
  } else {
    TensorFile file = read_safetensors(path);
    tensors = std::move(file.tensors);
    metadata = std::move(file.metadata);
    strip_ddp(tensors);
  }
  std::optional<NetConfig> c = config;
  if (!c && metadata.count("config")) {
    c = net_config_from_metadata(path, metadata.at("config"));
  }
  bool has_augment = false;
  for (const auto& [name, t] : tensors) has_augment |= name.find("map_augment") != std::string::npos;
  if (c && !has_augment) c->augment_dim = 0;
  LoadedNet loaded = load_net_from(std::move(tensors), metadata, path, c);
  return Student(loaded.net, pid_release_constants());
}

}  // namespace pidistill
