#include "pidistill/pid/pytorch_export.h"

#include "pidistill/io/torch_save_writer.h"
#include "pidistill/pid/student_file.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace pidistill {

namespace {

using json = nlohmann::ordered_json;

// EDM's preconditioner classes and the constants each takes as a keyword (VPPrecond derives sigma_min and
// sigma_max from its beta schedule, so they must not be passed to it).
struct PrecondClass {
  const char* precond;
  const char* name;
  std::vector<const char*> constants;
};
const PrecondClass kPrecondClasses[] = {
    {"edm", "EDMPrecond", {"sigma_min", "sigma_max", "sigma_data"}},
    {"vp", "VPPrecond", {"beta_d", "beta_min", "M", "epsilon_t"}},
    {"ve", "VEPrecond", {"sigma_min", "sigma_max"}},
};

// EDMPrecond(img_resolution, img_channels, label_dim, use_fp16, <constants>, model_type, **model_kwargs).
json precond_kwargs(const LoadedNet& loaded, const json& config, const PrecondClass& cls) {
  json kwargs;
  kwargs["img_resolution"] = config["img_resolution"];
  kwargs["img_channels"] = config["img_channels"];
  kwargs["label_dim"] = config["label_dim"];
  auto fp16 = loaded.metadata.find("use_fp16");
  kwargs["use_fp16"] = fp16 != loaded.metadata.end() && fp16->second == "true";
  auto constants = loaded.metadata.find("precond_constants");
  if (constants != loaded.metadata.end()) {
    const json c = json::parse(constants->second, nullptr, /*allow_exceptions=*/false);
    if (c.is_object())
      for (const char* key : cls.constants)
        if (c.contains(key)) kwargs[key] = c[key];
  }
  kwargs["model_type"] = config["model_type"];
  for (const auto& [key, value] : config.items())
    if (key != "model_type" && key != "img_resolution" && key != "img_channels" && key != "label_dim")
      kwargs[key] = value;
  return kwargs;
}

// training.networks.SongUNet / DhariwalUNet(img_resolution, in_channels, out_channels, label_dim, ...).
json network_kwargs(const json& config) {
  json kwargs;
  kwargs["img_resolution"] = config["img_resolution"];
  kwargs["in_channels"] = config["img_channels"];
  kwargs["out_channels"] = config["img_channels"];
  for (const auto& [key, value] : config.items())
    if (key != "model_type" && key != "img_resolution" && key != "img_channels") kwargs[key] = value;
  return kwargs;
}

// PID's cm.network classes take guided-diffusion keywords and hard-code the rest: SongUNet is DDPM++ only,
// DhariwalUNet attends at 32, 16 and 8; neither has an augmentation mapping. Null when the network is not
// one.
json pid_kwargs(const NetConfig& c) {
  const bool song = c.model_type == "SongUNet" && c.embedding_type == "positional" &&
                    c.channel_mult_noise == 1 && c.encoder_type == "standard" &&
                    c.decoder_type == "standard" && c.resample_filter == std::vector<int>{1, 1};
  const bool dhariwal = c.model_type == "DhariwalUNet" && c.attn_resolutions == std::vector<int>{32, 16, 8};
  if (c.channel_mult_emb != 4 || !(song || dhariwal)) return nullptr;
  json kwargs;
  kwargs["image_size"] = c.img_resolution;
  kwargs["in_channels"] = c.img_channels;
  kwargs["model_channels"] = c.model_channels;
  kwargs["out_channels"] = c.img_channels;
  kwargs["num_res_blocks"] = c.num_blocks;
  kwargs["attention_resolutions"] = c.attn_resolutions;
  kwargs["dropout"] = c.dropout;
  kwargs["channel_mult"] = c.channel_mult;
  kwargs["num_classes"] = c.label_dim > 0 ? json(c.label_dim) : json(nullptr);
  return kwargs;
}

}  // namespace

PyTorchExport pytorch_export(const LoadedNet& loaded, const std::string& format, const std::string& source) {
  if (format != "edm" && format != "pid") fail("--format", "must be edm or pid, got '" + format + "'");
  const PrecondClass* cls = nullptr;
  for (const auto& c : kPrecondClasses)
    if (loaded.precond == c.precond) cls = &c;
  if (!cls) fail(source, "precond '" + loaded.precond + "' has no EDM class (expected edm, vp or ve)");
  const json config = json::parse(net_config_to_json(loaded.config));
  const std::string model_class = "training.networks." + loaded.config.model_type;

  PyTorchExport out;
  for (auto& [name, t] : state_dict(*loaded.net))
    out.state.emplace_back(format == "edm" ? name : name.substr(std::string("model.").size()), t);

  json j;
  j["format"] = format;
  if (format == "edm") {
    j["state_dict"] = std::string("EDM's names with 'model.': ") + cls->name + ".state_dict()";
    j["class"] = std::string("training.networks.") + cls->name;
    j["kwargs"] = precond_kwargs(loaded, config, *cls);
  } else {
    j["state_dict"] = "EDM's names without 'model.': " + loaded.config.model_type + ".state_dict()";
    j["class"] = model_class;
    j["kwargs"] = network_kwargs(config);
  }
  const json pid = pid_kwargs(loaded.config);
  if (!pid.is_null()) {
    j["pid_class"] = "cm.network." + loaded.config.model_type;
    j["pid_kwargs"] = pid;
    j["pid_note"] =
        "PID's scripts/image_sample.py loads either format (it drops 'model.' and 'map_augment' from the "
        "keys); "
        "load_state_dict on cm.network." +
        loaded.config.model_type + " takes the pid format" +
        (loaded.config.augment_dim > 0 ? " without its 'map_augment' keys" : "");
  }
  j["config"] = config;
  j["precond"] = loaded.precond;
  if (is_student_file(loaded)) {
    const StudentConstants c = student_from(loaded).constants;
    json s;
    s["T"] = c.T;
    s["sigma_min"] = c.sigma_min;
    s["sigma_data"] = c.sigma_data;
    s["c_in"] = c.c_in();
    s["formula"] =
        "x = (t/T) (T z) + (1 - t/T) F(c_in T z, ln(t)/4 [, class]) with F the network (its kwargs above, "
        "called "
        "as F(x, noise_labels, class_labels)); images: one call at t = sigma_min";
    j["student"] = s;
  }
  j["source"] = std::filesystem::path(source).filename().string();
  out.json = j.dump(2) + "\n";
  return out;
}

std::string export_json_path(const std::string& out) {
  std::string path = std::filesystem::path(out).replace_extension(".json").string();
  if (path == out) fail(out, "the export's JSON would overwrite it; name the state dict OUT.pt");
  return path;
}

void write_pytorch_export(const std::string& out, const PyTorchExport& exported) {
  const std::string json_path = export_json_path(out);
  write_torch_state_dict(out, exported.state);
  write_file_atomic(json_path, exported.json);
}

}  // namespace pidistill
