// PID's released student checkpoints (pantheon5100/pid_diffusion): a state dict of PID's SongUNet, read as
// our student with PID's constants.
#pragma once
#include "pidistill/io/safetensors.h"
#include "pidistill/nets/net_config.h"
#include "pidistill/pid/student.h"

#include <optional>
#include <string>

namespace pidistill {

// PID's constants: the teacher's sigma_max = 80, sigma_min = 0.002, sigma_data = 0.5 (cm/script_util.py).
StudentConstants pid_release_constants();

// The state dict in a PID student checkpoint: a torch.save (zip or legacy) of a plain dict, or of a dict
// nesting it under 'state_dict' or 'model'; or a safetensors file. A DDP 'module.' prefix is removed from
// every key. Error naming the file and its top-level keys when no dict of tensors is found.
NamedTensors read_pid_state_dict(const std::string& path);

// The student a PID checkpoint holds, F built from `config` (a state dict does not describe its network; a
// safetensors file with "config" metadata does). PID's SongUNet has no augmentation mapping: a state without
// 'map_augment' keys builds F with augment_dim 0 whatever the config says. Errors as load_net's.
Student load_pid_student(const std::string& path, const std::optional<NetConfig>& config);

}  // namespace pidistill
