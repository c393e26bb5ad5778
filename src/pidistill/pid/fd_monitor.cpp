#include "pidistill/pid/fd_monitor.h"

#include "pidistill/pid/image_generator.h"
#include "pidistill/pid/student_file.h"
#include "pidistill/util/error.h"
#include "pidistill/util/image_io.h"
#include "pidistill/util/seeds.h"

#include <ATen/ATen.h>

#include <vector>

namespace pidistill {

FdMonitor::FdMonitor(const FdMonitorOptions& options) : options_(options) {
  if (options_.ref.empty()) fail("--fd-ref", "required by --fd-every; hint: make one with pidistill ref");
  if (options_.detector.empty())
    fail("--fd-detector", "required by --fd-every (inception-2015-12-05.pt or a pidistill classifier)");
  if (options_.images < 2) fail("--fd-images", "must be >= 2 (a covariance needs two images)");
  detector_ = load_detector(options_.detector);
  reference_ = read_reference(options_.ref, detector_->feature_dim());
}

double FdMonitor::measure(const Student& student, const NetConfig& c) {
  const auto param = student.F->parameters().front();
  auto source = [&](int64_t begin, int64_t end) {
    std::vector<int64_t> seeds;
    for (int64_t k = begin; k < end; ++k) seeds.push_back(options_.first_seed + k);
    at::Tensor z = latents_for_seeds(seeds, c.img_channels, c.img_resolution)
                       .to(param.device(), param.scalar_type());  // z: [b, C, H, W]
    at::Tensor labels;
    if (c.label_dim > 0)
      labels = at::one_hot(labels_for_seeds(seeds, c), c.label_dim).to(param.device(), param.scalar_type());
    at::Tensor x = one_call_generate(student, z, labels);                  // x: [b, C, H, W] in [-1, 1]
    return to_uint8(x.to(at::kFloat)).permute({0, 3, 1, 2}).contiguous();  // [b, C, H, W] uint8, as the PNGs
  };
  MeasureOptions m;
  m.batch = options_.batch;
  m.keep_features = 0;  // FD only: precision/recall and IS are for `pidistill fid`
  m.want_probs = false;
  m.label = "fd";
  m.progress = false;  // inside a training run, whose own progress line is the one to watch
  ImageSetMeasure measured = measure_images(*detector_, options_.images, source, m);
  return compare_to_reference(measured, reference_, "--fd-ref " + options_.ref).fd;
}

}  // namespace pidistill
