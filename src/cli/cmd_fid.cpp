// `pidistill ref` and `pidistill fid`: EDM fid.py's two commands. ref: a dataset's feature statistics as an
// npz; fid: images from a network (one latent per seed), a folder of PNGs, or a statistics file, measured
// against a reference: FD, Inception Score, precision/recall, as one JSON line.
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "pidistill/data/dataset.h"
#include "pidistill/data/image_folder_reader.h"
#include "pidistill/metrics/evaluate.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/pid/image_generator.h"
#include "pidistill/util/error.h"
#include "pidistill/util/image_io.h"
#include "pidistill/util/seeds.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>

namespace pidistill::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct DetectorOptions {
  std::string detector;  // --detector: inception-2015-12-05.pt or a classifier file
  std::string features;  // --features fmnist: the bundled Fashion-MNIST classifier
  int64_t batch = 250;   // --batch: images per detector call
  int64_t keep = 10000;  // --pr-features: features kept for precision/recall
};

void add_detector_options(CLI::App& cmd, DetectorOptions& o) {
  cmd.add_option(
      "--detector", o.detector,
      "Feature network: inception-2015-12-05.pt (TorchScript, for FID) or a pidistill classifier file");
  cmd.add_option("--features", o.features, "Shorthand for a bundled feature network: fmnist (FD-FMNIST)")
      ->check(CLI::IsMember({"fmnist"}));
  cmd.add_option("--batch", o.batch, "Images per batch")->capture_default_str();
  cmd.add_option("--pr-features", o.keep, "Features kept for precision/recall (0 = skip it)")
      ->capture_default_str();
}

std::unique_ptr<FeatureDetector> open_detector(const DetectorOptions& o) {
  if (!o.detector.empty() && !o.features.empty()) fail("--detector/--features", "give one of them, not both");
  if (o.features == "fmnist") return load_detector(bundled_model("fmnist-classifier.safetensors"));
  return load_detector(o.detector);
}

MeasureOptions measure_options(const DetectorOptions& o, const std::string& label) {
  if (o.batch < 1 || o.batch > 100000) fail("--batch", "must be in [1, 100000]");
  if (o.keep < 0) fail("--pr-features", "must be >= 0");
  MeasureOptions m;
  m.batch = o.batch;
  m.keep_features = o.keep;
  m.label = label;
  return m;
}

// ---- ref ----

struct RefOptions {
  std::string data, out, split = "train";
  int pad = 0;
  int64_t max_images = 0;
  DetectorOptions detector;
};

void run_ref(const RefOptions& o) {
  if (o.out.empty()) fail("--out", "required: the statistics file to write (.npz)");
  if (o.pad < 0 || o.pad > 4096) fail("--pad", "must be in [0, 4096]");
  if (o.max_images < 0) fail("--max", "must be >= 0");
  auto detector = open_detector(o.detector);
  DatasetOptions dopts;
  dopts.split = o.split;
  dopts.pad_to = o.pad;
  Dataset data = open_dataset(o.data, dopts);
  const at::Tensor& images = data.raw_images();  // [N, C, H, W] uint8
  const int64_t n = o.max_images > 0 ? std::min(o.max_images, data.size()) : data.size();
  // Why here: measure_images would say it too, but in the detector's name (found by tests/hostile/sweep.py).
  if (n < 2)
    fail(o.max_images > 0 && data.size() >= 2 ? "--max" : o.data,
         "need at least two images to estimate a covariance, got " + std::to_string(n));
  auto t0 = std::chrono::steady_clock::now();
  ImageSetMeasure m = measure_images(
      *detector, n, [&](int64_t b, int64_t e) { return images.slice(0, b, e); },
      measure_options(o.detector, "ref"));
  write_reference(o.out, m);
  json line = {{"ref", o.out},
               {"data", o.data},
               {"split", o.split},
               {"images", n},
               {"dims", m.stats.mu.size(0)},
               {"detector", detector->file()},
               {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  if (m.probs.defined() && n >= 10) {
    ScoreMeanStd is = inception_score(m.probs, 10);
    line["is_mean"] = is.mean;
    line["is_std"] = is.std;
  }
  std::cout << line.dump() << std::endl;
}

// ---- fid ----

struct FidOptions {
  std::string net, images, stats, ref, seeds = "0-49999", grid, save_stats;
  int repeat = 1;
  std::string solver = "heun";
  GeneratorOptions gen;
  DetectorOptions detector;
};

// Every file under dir must be an image (dataset.json aside): a stray file means the folder is not what the
// user thinks it is, and skipping it silently would measure another set.
Dataset read_image_dir(const std::string& dir) {
  if (!fs::is_directory(dir)) fail(dir, "--images takes a folder of PNG/JPEG files");
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    if (name != "dataset.json" && !is_image_name(name))
      fail(entry.path().string(),
           "not a PNG or JPEG image; hint: --images takes a folder holding only images");
  }
  return read_image_folder(dir);
}

json values_json(const MetricValues& v, const std::string& metric) {
  json j = {{"metric", metric}, {"fd", v.fd}};
  if (v.has_is) {
    j["is_mean"] = v.is.mean;
    j["is_std"] = v.is.std;
  }
  if (v.has_pr) {
    j["precision"] = v.pr.precision;
    j["recall"] = v.pr.recall;
    j["pr_images"] = v.pr_fake;
  }
  return j;
}

void run_fid(const FidOptions& o) {
  if (o.ref.empty())
    fail("--ref", "required: the reference statistics (.npz) from pidistill ref or EDM's fid.py");
  const int sources = int(!o.net.empty()) + int(!o.images.empty()) + int(!o.stats.empty());
  if (sources != 1) fail("fid", "give exactly one of --net, --images, --stats");
  if (o.repeat < 1 || o.repeat > 100) fail("--repeat", "must be in [1, 100]");
  auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

  if (!o.stats.empty()) {
    Reference a = read_reference(o.stats), b = read_reference(o.ref, a.stats.mu.size(0));
    ImageSetMeasure m;
    m.stats = a.stats;
    m.features = a.features;  // precision/recall when both files kept features
    MetricValues v = compare_to_reference(m, b, o.stats);
    json line = values_json(v, "FD");
    line["stats"] = o.stats;
    line["ref"] = o.ref;
    line["images"] = a.stats.count;
    line["seconds"] = seconds();
    std::cout << line.dump() << std::endl;
    return;
  }

  auto detector = open_detector(o.detector);
  Reference ref = read_reference(o.ref, detector->feature_dim());
  MeasureOptions mopts = measure_options(o.detector, "fid");

  if (!o.images.empty()) {
    if (o.repeat != 1) fail("--repeat", "only with --net (a folder is one set of images)");
    Dataset data = read_image_dir(o.images);
    if (data.size() < 2)
      fail(o.images, "need at least two images to estimate a covariance, got " + std::to_string(data.size()));
    const at::Tensor& images = data.raw_images();
    ImageSetMeasure m = measure_images(
        *detector, data.size(), [&](int64_t b, int64_t e) { return images.slice(0, b, e); }, mopts);
    if (!o.save_stats.empty()) write_reference(o.save_stats, m);
    json line = values_json(compare_to_reference(m, ref, o.images), detector->name());
    line["images"] = data.size();
    line["dir"] = o.images;
    line["ref"] = o.ref;
    line["seconds"] = seconds();
    std::cout << line.dump() << std::endl;
    return;
  }

  LoadedNet loaded = load_net(o.net);
  const NetConfig& c = loaded.config;
  loaded.net->eval();
  GeneratorOptions gopts = o.gen;
  gopts.sampler.solver = solver_from_string(o.solver);
  ImageGenerator generator = make_image_generator(loaded, gopts);
  const std::vector<int64_t> base_seeds = parse_seeds(o.seeds);
  const int64_t n = int64_t(base_seeds.size());
  if (n < 2) fail("--seeds", "need at least two images to estimate a covariance");

  std::vector<double> fds;
  json runs = json::array();
  for (int r = 0; r < o.repeat; ++r) {
    // EDM's convention for --repeat: the r-th run shifts the seed list by r times its length (0-49999,
    // 50000-...).
    std::vector<int64_t> seeds = base_seeds;
    for (auto& s : seeds) s += int64_t(r) * n;
    auto source = [&](int64_t b, int64_t e) {
      std::vector<int64_t> part(seeds.begin() + b, seeds.begin() + e);
      at::Tensor z = latents_for_seeds(part, c.img_channels, c.img_resolution);  // [b, C, H, W]
      at::Tensor labels;
      if (c.label_dim > 0) labels = at::one_hot(labels_for_seeds(part, c), c.label_dim).to(at::kDouble);
      at::Tensor x = generator.sample(z, labels);  // [b, C, H, W] float64
      at::Tensor pixels = to_uint8(x.to(at::kFloat)).permute({0, 3, 1, 2}).contiguous();  // as the PNG writer
      if (r == 0 && b == 0 && !o.grid.empty())
        write_png_grid(o.grid, x.slice(0, 0, std::min<int64_t>(64, e - b)).to(at::kFloat));
      return pixels;
    };
    mopts.label = o.repeat > 1 ? "fid " + std::to_string(r + 1) + "/" + std::to_string(o.repeat) : "fid";
    ImageSetMeasure m = measure_images(*detector, n, source, mopts);
    if (r == 0 && !o.save_stats.empty()) write_reference(o.save_stats, m);
    json run = values_json(compare_to_reference(m, ref, o.net), detector->name());
    run["seeds"] = std::to_string(seeds.front()) + "-" + std::to_string(seeds.back());
    fds.push_back(run["fd"].get<double>());
    runs.push_back(run);
  }
  json line = runs[0];
  if (o.repeat > 1) {
    double mean = 0, var = 0;
    for (double f : fds) mean += f / double(fds.size());
    for (double f : fds) var += (f - mean) * (f - mean) / double(fds.size());
    line = {{"metric", detector->name()},
            {"fd", *std::min_element(fds.begin(), fds.end())},
            {"fd_min", *std::min_element(fds.begin(), fds.end())},
            {"fd_mean", mean},
            {"fd_std", std::sqrt(var)},
            {"runs", runs}};
  }
  line["net"] = o.net;
  line["ref"] = o.ref;
  line["images"] = n;
  line["seeds"] = o.seeds;
  line["repeat"] = o.repeat;
  line["nfe"] = generator.nfe;
  if (!generator.student) {
    line["solver"] = o.solver;
    line["steps"] = gopts.sampler.num_steps;
  }
  line["seconds"] = seconds();
  std::cout << line.dump() << std::endl;
}

}  // namespace

void add_ref_command(CLI::App& app) {
  auto o = std::make_shared<RefOptions>();
  CLI::App* cmd =
      app.add_subcommand("ref", "Reference statistics of a dataset for fid (EDM's fid.py ref), as .npz");
  cmd->add_option("--data", o->data, "Dataset: IDX folder, CIFAR-10 batches, image folder or EDM zip")
      ->required();
  cmd->add_option("--split", o->split, "IDX: train | t10k; CIFAR-10: train | test")->capture_default_str();
  cmd->add_option("--pad", o->pad,
                  "Zero-pad images to this size (e.g. 32 for 28x28 Fashion-MNIST, as --pad in train)");
  cmd->add_option("--max", o->max_images, "Use only the first N images (0 = all)");
  cmd->add_option("--out", o->out, "Statistics file to write (.npz: mu, sigma, count, features)")->required();
  add_detector_options(*cmd, o->detector);
  cmd->callback([o] { run_ref(*o); });
}

void add_fid_command(CLI::App& app) {
  auto o = std::make_shared<FidOptions>();
  CLI::App* cmd = app.add_subcommand(
      "fid",
      "FD (FID with Inception), Inception Score and precision/recall of a network, a folder or a stats file");
  cmd->add_option("--net", o->net, "Network file: a teacher (EDM sampler) or a PID student (one call)");
  cmd->add_option("--images", o->images, "Measure this folder of PNG/JPEG images instead of a network");
  cmd->add_option("--stats", o->stats, "Measure this statistics file (.npz) instead: prints FD(stats, ref)");
  cmd->add_option("--ref", o->ref, "Reference statistics (.npz from pidistill ref or EDM's fid.py)")
      ->required();
  cmd->add_option("--seeds", o->seeds, "Seeds of the generated images, one image per seed")
      ->capture_default_str();
  cmd->add_option("--repeat", o->repeat,
                  "Runs on consecutive seed ranges of the same length; reports min/mean/std")
      ->capture_default_str();
  cmd->add_option("--steps", o->gen.sampler.num_steps, "Teacher: sampler steps")->capture_default_str();
  cmd->add_option("--solver", o->solver, "Teacher: heun | euler")->capture_default_str();
  cmd->add_option("--rho", o->gen.sampler.rho, "Teacher: time step exponent")->capture_default_str();
  cmd->add_option("--t", o->gen.t, "PID student: trajectory time to evaluate (default sigma_min)");
  cmd->add_flag("--as-student", o->gen.as_student,
                "Read a teacher file as the PID student at initialisation (what distill starts from), one call");
  cmd->add_option("--grid", o->grid, "Also write the first 64 images of the first run as a PNG grid");
  cmd->add_option("--save-stats", o->save_stats, "Also write the measured set's statistics (.npz)");
  add_detector_options(*cmd, o->detector);
  cmd->callback([o] { run_fid(*o); });
}

}  // namespace pidistill::cli
