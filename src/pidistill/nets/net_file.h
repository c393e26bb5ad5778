// Loading a network from any supported file (safetensors, torch.save zip or legacy, EDM's network pickles)
// and saving a self-describing one.
// Stable API (see pidistill/pidistill.h): LoadedNet, load_net, save_net (the other declarations are internal).
#pragma once
#include "pidistill/io/edm_pickle.h"
#include "pidistill/io/safetensors.h"
#include "pidistill/nets/unet.h"

#include <map>
#include <memory>
#include <optional>
#include <string>

namespace pidistill {

struct LoadedNet {
  std::shared_ptr<UNet> net;                    // weights loaded, eval mode, float32
  NetConfig config;
  std::string precond = "edm";                  // metadata "precond", default edm
  std::map<std::string, std::string> metadata;  // everything else the file said (e.g. a PID student's constants)
};

// Strips a 'model.' substring from keys (as PID's loader does) and, when the network has no augment
// mapping, drops 'map_augment' keys. The config comes from `config_override` if given, else from the
// file's metadata "config"; a file without either is an Error asking for --config or --arch. An EDM network
// pickle or training state describes itself (edm_net_metadata): no config is needed.
// Missing or unexpected keys and shape mismatches throw Error naming the file and the key; nothing is
// half-loaded.
LoadedNet load_net(const std::string& path, const std::optional<NetConfig>& config_override = std::nullopt);

// load_net on tensors already read (e.g. a state dict unwrapped from a training checkpoint), with the file's
// metadata ("config", "precond", ...); `path` names errors.
LoadedNet load_net_from(NamedTensors tensors, const std::map<std::string, std::string>& metadata,
                        const std::string& path, const std::optional<NetConfig>& config_override = std::nullopt);

// net_config_from_json on a file's metadata "config"; errors name the file.
NetConfig net_config_from_metadata(const std::string& path, const std::string& config_json);

// What an EDM pickle says about its network, as metadata of a converted file: "config" (NetConfig JSON),
// "precond" (edm|vp|ve), "precond_constants" (JSON), "edm_class", "edm_init_kwargs" (JSON), "use_fp16".
// An architecture our networks cannot build is an Error naming the file and the keyword.
std::map<std::string, std::string> edm_net_metadata(const EdmPickle& edm);

// Copies `state` (names without 'model.') into `net`, strictly. `where` names the source in errors.
void load_state_dict(UNet& net, const NamedTensors& state, const std::string& where);

// The network's parameters and buffers under EDM's names, prefixed by 'model.' as EDMPrecond's state dict is.
NamedTensors state_dict(const UNet& net);

// SHA-256 of what the network computes: its config, preconditioning and constants, and every parameter and
// buffer (name, dtype, shape, values). Files that differ only in other metadata (notes, paths) hash the same.
std::string network_sha256(const LoadedNet& loaded);

// Writes a self-describing safetensors file: tensors under 'model.' names, metadata "config" (the NetConfig
// as JSON), "precond", plus `extra` metadata.
void save_net(const std::string& path, const UNet& net, const std::string& precond,
              const std::map<std::string, std::string>& extra = {});

}  // namespace pidistill
