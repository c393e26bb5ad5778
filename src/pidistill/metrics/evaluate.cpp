#include "pidistill/metrics/evaluate.h"

#include "pidistill/io/npz.h"
#include "pidistill/util/error.h"
#include "pidistill/util/progress.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace pidistill {

ImageSetMeasure measure_images(FeatureDetector& detector, int64_t count, const ImageBatchSource& source,
                               const MeasureOptions& o) {
  if (count < 2)
    fail(detector.file(), "need at least two images to estimate a covariance, got " + std::to_string(count));
  if (o.batch < 1) fail("--batch", "must be positive");
  StatsAccumulator acc(detector.feature_dim());
  std::vector<at::Tensor> probs, kept;
  int64_t kept_count = 0;
  Progress progress(o.label, count, "img", o.progress);
  for (int64_t begin = 0; begin < count; begin += o.batch) {
    const int64_t end = std::min(count, begin + o.batch);
    at::Tensor images = source(begin, end);  // [b, C, H, W] uint8
    if (images.size(0) != end - begin) fail(o.label, "image source returned the wrong number of images");
    DetectorOutput out = detector.run(images, o.want_probs);
    if (out.features.size(1) != detector.feature_dim())
      fail(detector.file(), "detector returned " + std::to_string(out.features.size(1)) +
                                " features, expected " + std::to_string(detector.feature_dim()));
    acc.add(out.features);
    if (o.want_probs) probs.push_back(out.probs);
    if (kept_count < o.keep_features) {
      at::Tensor take =
          out.features.slice(0, 0, std::min(out.features.size(0), o.keep_features - kept_count));
      kept.push_back(take.clone());
      kept_count += take.size(0);
    }
    progress.update(end);
  }
  progress.finish();
  ImageSetMeasure m;
  m.stats = acc.stats();
  if (!probs.empty()) m.probs = at::cat(probs);
  if (!kept.empty()) m.features = at::cat(kept);
  return m;
}

Reference read_reference(const std::string& path, int64_t feature_dim) {
  const NamedTensors arrays = read_npz(path);  // once: a 2048-dimensional file is 33 MB
  Reference ref;
  ref.stats = stats_from_arrays(arrays, path);
  const int64_t d = ref.stats.mu.size(0);
  if (feature_dim > 0 && d != feature_dim)
    fail(path, "reference statistics have " + std::to_string(d) + " features but the detector gives " +
                   std::to_string(feature_dim) +
                   "; hint: make the reference with the same --detector/--features");
  for (const auto& [name, t] : arrays) {
    if (name != "features") continue;
    if (t.dim() != 2 || t.size(1) != d || !t.is_floating_point())
      fail(path, "array 'features' must be float [M, " + std::to_string(d) + "]");
    ref.features = t.to(at::kFloat);
  }
  return ref;
}

void write_reference(const std::string& path, const ImageSetMeasure& m) {
  NamedTensors arrays = stats_to_arrays(m.stats, path);
  if (m.features.defined()) arrays.emplace_back("features", m.features.to(at::kFloat));
  write_npz(path, arrays);
}

MetricValues compare_to_reference(const ImageSetMeasure& m, const Reference& ref, const std::string& where) {
  MetricValues v;
  v.fd = frechet_distance(m.stats, ref.stats, where);
  if (m.probs.defined() && m.probs.size(0) >= 10) {
    v.is = inception_score(m.probs, 10);
    v.has_is = true;
  }
  if (m.features.defined() && ref.features.defined()) {
    const int64_t n = std::min(m.features.size(0), ref.features.size(0));
    if (n > 3) {
      v.pr = precision_recall(ref.features.slice(0, 0, n), m.features.slice(0, 0, n), /*k=*/3);
      v.has_pr = true;
      v.pr_real = v.pr_fake = n;
    }
  }
  return v;
}

}  // namespace pidistill
