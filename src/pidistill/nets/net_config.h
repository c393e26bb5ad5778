// The constructor options of EDM's networks, under EDM's keyword names, and the arch presets of EDM's train.py.
// Stable API (see pidistill/pidistill.h): NetConfig (fields may be added), net_config_from_json/to_json, net_config_preset.
#pragma once
#include <string>
#include <vector>

namespace pidistill {

struct NetConfig {
  std::string model_type = "SongUNet";     // SongUNet (DDPM++, NCSN++) or DhariwalUNet (ADM).
  int img_resolution = 32;                 // Image resolution at input/output.
  int img_channels = 3;                    // Number of color channels at input/output.
  int label_dim = 0;                       // Number of class labels, 0 = unconditional.
  int augment_dim = 0;                     // Augmentation label dimensionality, 0 = no augmentation.
  int model_channels = 128;                // Base multiplier for the number of channels.
  std::vector<int> channel_mult = {1, 2, 2, 2};  // Per-resolution multipliers for the number of channels.
  int channel_mult_emb = 4;                // Multiplier for the dimensionality of the embedding vector.
  int num_blocks = 4;                      // Number of residual blocks per resolution.
  std::vector<int> attn_resolutions = {16};  // List of resolutions with self-attention.
  double dropout = 0.10;                   // Dropout probability of intermediate activations.
  double label_dropout = 0;                // Dropout probability of class labels for classifier-free guidance.
  // SongUNet only:
  std::string embedding_type = "positional";  // positional (DDPM++) or fourier (NCSN++).
  int channel_mult_noise = 1;              // Timestep embedding size: 1 for DDPM++, 2 for NCSN++.
  std::string encoder_type = "standard";   // standard (DDPM++), skip, residual (NCSN++).
  std::string decoder_type = "standard";   // standard (DDPM++), skip (NCSN++).
  std::vector<int> resample_filter = {1, 1};  // [1,1] for DDPM++, [1,3,3,1] for NCSN++.
};

// JSON object with EDM's keyword names, as stored in a weight file's __metadata__ "config".
// Keys absent from the JSON take EDM's default for that model_type (DhariwalUNet's differ from SongUNet's).
// Unknown keys or bad values throw Error naming the key.
NetConfig net_config_from_json(const std::string& json_text);
std::string net_config_to_json(const NetConfig& config);

// The config of an EDM network pickle: its preconditioner's _init_kwargs (JSON) and the class name of the
// network inside it (SongUNet, DhariwalUNet). The preconditioner's own keywords (use_fp16, sigma_min,
// sigma_max, sigma_data, beta_d, beta_min, M, epsilon_t) are not network options and are dropped; any other
// unknown keyword is an Error naming it.
NetConfig net_config_from_edm_kwargs(const std::string& kwargs_json, const std::string& model_class);

// EDM train.py presets: "ddpmpp", "ncsnpp", "adm" at the given resolution/channels.
NetConfig net_config_preset(const std::string& arch, int img_resolution, int img_channels);

// Checks the options for values EDM would reject or that cannot build a network; throws Error naming the option.
void validate(const NetConfig& config);

}  // namespace pidistill
