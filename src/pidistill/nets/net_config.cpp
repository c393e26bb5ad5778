#include "pidistill/nets/net_config.h"

#include "pidistill/util/error.h"
#include "pidistill/util/json_depth.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>

namespace pidistill {

using nlohmann::json;

namespace {

const char* kWhere = "net config";
constexpr int kMaxJsonDepth = 64;  // a config is 2 levels deep

// DhariwalUNet's constructor defaults differ from SongUNet's (which are NetConfig's).
NetConfig defaults_for(const std::string& model_type) {
  NetConfig c;
  c.model_type = model_type;
  if (model_type == "DhariwalUNet") {
    c.model_channels = 192;
    c.channel_mult = {1, 2, 3, 4};
    c.num_blocks = 3;
    c.attn_resolutions = {32, 16, 8};
    c.dropout = 0.10;
  }
  return c;
}

const std::set<std::string> kCommonKeys = {"model_type", "img_resolution", "img_channels", "label_dim", "augment_dim",
                                           "model_channels", "channel_mult", "channel_mult_emb", "num_blocks",
                                           "attn_resolutions", "dropout", "label_dropout", "use_fp16"};
const std::set<std::string> kSongKeys = {"embedding_type", "channel_mult_noise", "encoder_type", "decoder_type",
                                         "resample_filter"};

int get_int(const json& j, const std::string& key) {
  if (!j.is_number_integer()) fail(kWhere, "'" + key + "' must be an integer, got " + j.dump());
  // Why: get<int> would wrap 2^40 to 0 silently; validate() bounds each key further.
  if (j.is_number_unsigned() ? j.get<uint64_t>() > uint64_t(INT32_MAX)
                             : (j.get<int64_t>() > INT32_MAX || j.get<int64_t>() < INT32_MIN))
    fail(kWhere, "'" + key + "' is " + j.dump() + ", beyond any network");
  return j.get<int>();
}
double get_double(const json& j, const std::string& key) {
  if (!j.is_number()) fail(kWhere, "'" + key + "' must be a number, got " + j.dump());
  return j.get<double>();
}
std::string get_string(const json& j, const std::string& key) {
  if (!j.is_string()) fail(kWhere, "'" + key + "' must be a string, got " + j.dump());
  return j.get<std::string>();
}
std::vector<int> get_ints(const json& j, const std::string& key) {
  if (!j.is_array()) fail(kWhere, "'" + key + "' must be a list of integers, got " + j.dump());
  std::vector<int> v;
  for (const auto& e : j) v.push_back(get_int(e, key));
  return v;
}

}  // namespace

NetConfig net_config_from_json(const std::string& json_text) {
  check_json_depth(json_text, kMaxJsonDepth, kWhere);  // dump() in the messages below recurses
  json j;
  try {
    j = json::parse(json_text);
  } catch (const std::exception& e) {
    fail(kWhere, std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) fail(kWhere, "expected a JSON object of EDM network options, got " + j.dump());
  std::string model_type = j.contains("model_type") ? get_string(j["model_type"], "model_type") : "SongUNet";
  if (model_type != "SongUNet" && model_type != "DhariwalUNet")
    fail(kWhere, "'model_type' is '" + model_type + "' (expected SongUNet or DhariwalUNet)");
  NetConfig c = defaults_for(model_type);
  for (const auto& [key, v] : j.items()) {
    bool song_only = kSongKeys.count(key) > 0;
    if (!kCommonKeys.count(key) && !song_only) fail(kWhere, "unknown option '" + key + "' (not an EDM network keyword)");
    if (song_only && model_type != "SongUNet") fail(kWhere, "option '" + key + "' exists only for SongUNet, not " + model_type);
    if (key == "model_type" || key == "use_fp16") continue;  // use_fp16 only matters for CUDA half precision
    if (key == "img_resolution") c.img_resolution = get_int(v, key);
    else if (key == "img_channels") c.img_channels = get_int(v, key);
    else if (key == "label_dim") c.label_dim = get_int(v, key);
    else if (key == "augment_dim") c.augment_dim = get_int(v, key);
    else if (key == "model_channels") c.model_channels = get_int(v, key);
    else if (key == "channel_mult") c.channel_mult = get_ints(v, key);
    else if (key == "channel_mult_emb") c.channel_mult_emb = get_int(v, key);
    else if (key == "num_blocks") c.num_blocks = get_int(v, key);
    else if (key == "attn_resolutions") c.attn_resolutions = get_ints(v, key);
    else if (key == "dropout") c.dropout = get_double(v, key);
    else if (key == "label_dropout") c.label_dropout = get_double(v, key);
    else if (key == "embedding_type") c.embedding_type = get_string(v, key);
    else if (key == "channel_mult_noise") c.channel_mult_noise = get_int(v, key);
    else if (key == "encoder_type") c.encoder_type = get_string(v, key);
    else if (key == "decoder_type") c.decoder_type = get_string(v, key);
    else if (key == "resample_filter") c.resample_filter = get_ints(v, key);
  }
  validate(c);
  return c;
}

NetConfig net_config_from_edm_kwargs(const std::string& kwargs_json, const std::string& model_class) {
  check_json_depth(kwargs_json, kMaxJsonDepth, kWhere);
  json j = json::parse(kwargs_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) fail(kWhere, "EDM _init_kwargs are not a JSON object");
  for (const char* k :
       {"use_fp16", "sigma_min", "sigma_max", "sigma_data", "beta_d", "beta_min", "M", "epsilon_t"})
    j.erase(k);
  if (j.contains("model_type") && j["model_type"] != model_class)
    fail(kWhere, "_init_kwargs say model_type " + j["model_type"].dump() + " but the network inside is a " +
                     model_class);
  j["model_type"] = model_class;
  return net_config_from_json(j.dump());
}

std::string net_config_to_json(const NetConfig& c) {
  json j = json::object();
  j["model_type"] = c.model_type;
  j["img_resolution"] = c.img_resolution;
  j["img_channels"] = c.img_channels;
  j["label_dim"] = c.label_dim;
  j["augment_dim"] = c.augment_dim;
  j["model_channels"] = c.model_channels;
  j["channel_mult"] = c.channel_mult;
  j["channel_mult_emb"] = c.channel_mult_emb;
  j["num_blocks"] = c.num_blocks;
  j["attn_resolutions"] = c.attn_resolutions;
  j["dropout"] = c.dropout;
  j["label_dropout"] = c.label_dropout;
  if (c.model_type == "SongUNet") {
    j["embedding_type"] = c.embedding_type;
    j["channel_mult_noise"] = c.channel_mult_noise;
    j["encoder_type"] = c.encoder_type;
    j["decoder_type"] = c.decoder_type;
    j["resample_filter"] = c.resample_filter;
  }
  return j.dump();
}

NetConfig net_config_preset(const std::string& arch, int img_resolution, int img_channels) {
  NetConfig c;
  if (arch == "ddpmpp" || arch == "ncsnpp") {
    c = defaults_for("SongUNet");
    c.model_channels = 128;
    c.channel_mult = {2, 2, 2};
    c.augment_dim = 9;  // EDM's --augment default 0.12 > 0 gives augment_dim 9
    c.dropout = 0.13;   // EDM's --dropout default
    if (arch == "ddpmpp") {
      c.embedding_type = "positional";
      c.channel_mult_noise = 1;
      c.encoder_type = "standard";
      c.decoder_type = "standard";
      c.resample_filter = {1, 1};
    } else {
      c.embedding_type = "fourier";
      c.channel_mult_noise = 2;
      c.encoder_type = "residual";
      c.decoder_type = "standard";
      c.resample_filter = {1, 3, 3, 1};
    }
  } else if (arch == "adm") {
    c = defaults_for("DhariwalUNet");
    c.dropout = 0.10;
  } else {
    fail("--arch", "unknown preset '" + arch + "' (expected ddpmpp, ncsnpp or adm)");
  }
  c.img_resolution = img_resolution;
  c.img_channels = img_channels;
  validate(c);
  return c;
}

void validate(const NetConfig& c) {
  auto bad = [](const std::string& key, const std::string& why) { fail(kWhere, "'" + key + "' " + why); };
  if (c.model_type != "SongUNet" && c.model_type != "DhariwalUNet") bad("model_type", "must be SongUNet or DhariwalUNet");
  if (c.img_channels < 1) bad("img_channels", "must be at least 1");
  if (c.label_dim < 0) bad("label_dim", "must be >= 0");
  if (c.augment_dim < 0) bad("augment_dim", "must be >= 0");
  if (c.model_channels < 1) bad("model_channels", "must be at least 1");
  // Upper bounds far above any real network, so that a hostile config cannot overflow the channel arithmetic
  // or make millions of modules before its size is checked against the file (unet_tensor_elements).
  if (c.model_channels > 65536) bad("model_channels", "must be at most 65536");
  if (c.label_dim > (1 << 24)) bad("label_dim", "must be at most 2^24");
  if (c.augment_dim > (1 << 24)) bad("augment_dim", "must be at most 2^24");
  if (c.num_blocks > 64) bad("num_blocks", "must be at most 64");
  if (c.channel_mult_emb > 1024) bad("channel_mult_emb", "must be at most 1024");
  if (c.channel_mult_noise > 1024) bad("channel_mult_noise", "must be at most 1024");
  if (c.resample_filter.size() > 64) bad("resample_filter", "must list at most 64 taps");
  for (int m : c.channel_mult)
    if (m > 1024) bad("channel_mult", "entries must be at most 1024");
  if (c.channel_mult.empty()) bad("channel_mult", "must list at least one level");
  for (int m : c.channel_mult)
    if (m < 1) bad("channel_mult", "entries must be >= 1");
  if (c.channel_mult_emb < 1) bad("channel_mult_emb", "must be at least 1");
  if (c.num_blocks < 0) bad("num_blocks", "must be >= 0");
  if (!(c.dropout >= 0 && c.dropout < 1)) bad("dropout", "must be in [0, 1)");
  if (!(c.label_dropout >= 0 && c.label_dropout <= 1)) bad("label_dropout", "must be in [0, 1]");
  const int levels = int(c.channel_mult.size());
  if (c.img_resolution < 1 || levels > 30 || c.img_resolution % (1 << (levels - 1)) != 0)
    bad("img_resolution", "must be a positive multiple of 2^(len(channel_mult)-1) = " + std::to_string(1 << std::min(levels - 1, 30)));
  // GroupNorm needs at least 4 channels per group.
  for (int m : c.channel_mult)
    if (c.model_channels * m < 4) bad("model_channels", "times each channel_mult must be at least 4 (GroupNorm)");
  if (c.model_type == "SongUNet") {
    if (c.model_channels < 4) bad("model_channels", "must be at least 4 for SongUNet (GroupNorm)");
    if (c.embedding_type != "positional" && c.embedding_type != "fourier")
      bad("embedding_type", "is '" + c.embedding_type + "' (expected positional or fourier)");
    if (c.channel_mult_noise < 1) bad("channel_mult_noise", "must be at least 1");
    if ((c.model_channels * c.channel_mult_noise) % 2) bad("channel_mult_noise", "times model_channels must be even");
    if (c.encoder_type != "standard" && c.encoder_type != "skip" && c.encoder_type != "residual")
      bad("encoder_type", "is '" + c.encoder_type + "' (expected standard, skip or residual)");
    if (c.decoder_type != "standard" && c.decoder_type != "skip")
      bad("decoder_type", "is '" + c.decoder_type + "' (expected standard or skip)");
    if (c.resample_filter.empty()) bad("resample_filter", "must list at least one tap");
    int sum = 0;
    for (int t : c.resample_filter) sum += t;
    if (sum == 0) bad("resample_filter", "taps must not sum to 0");
  } else if (c.model_channels % 2) {
    bad("model_channels", "must be even for DhariwalUNet (positional embedding)");
  }
}

}  // namespace pidistill
