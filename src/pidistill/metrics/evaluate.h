// Measuring a set of images against a reference, EDM fid.py's protocol: uint8 images through a
// FeatureDetector in batches, float64 statistics (no set held whole), Inception Score from the probabilities,
// precision/recall on a kept subset of features; and the reference file (EDM's npz: mu, sigma; ours adds
// count and features).
#pragma once
#include "pidistill/metrics/feature_detector.h"
#include "pidistill/metrics/frechet.h"
#include "pidistill/metrics/inception_score.h"
#include "pidistill/metrics/precision_recall.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>

namespace pidistill {

struct ImageSetMeasure {
  FeatureStats stats;  // of all images
  at::Tensor probs;    // [N, K] float32 (undefined unless asked for)
  at::Tensor
      features;  // [min(N, keep_features), D] float32: the first images' features, for precision/recall
};

// Returns uint8 images [end - begin, C, H, W] for the images [begin, end) of the set.
using ImageBatchSource = std::function<at::Tensor(int64_t begin, int64_t end)>;

struct MeasureOptions {
  int64_t batch = 250;            // images per detector call
  int64_t keep_features = 10000;  // features kept for precision/recall (0 = none)
  bool want_probs = true;         // class probabilities for the Inception Score
  std::string label = "measure";  // progress bar label
  bool progress = true;           // show the progress bar
};

// Error if count < 2.
ImageSetMeasure measure_images(FeatureDetector& detector, int64_t count, const ImageBatchSource& source,
                               const MeasureOptions& options = {});

struct Reference {
  FeatureStats stats;
  at::Tensor features;  // [M, D] float32 or undefined (EDM's own files have none)
};

// EDM's npz (mu, sigma) or ours (plus count, features). Error naming the file if D differs from `feature_dim`
// (> 0): a file made with another detector.
Reference read_reference(const std::string& path, int64_t feature_dim = 0);
void write_reference(const std::string& path, const ImageSetMeasure& measure);

struct MetricValues {
  double fd = 0;
  ScoreMeanStd is;  // valid when probabilities were measured
  bool has_is = false;
  PrecisionRecall pr;  // valid when both sides have features
  bool has_pr = false;
  int64_t pr_real = 0, pr_fake = 0;  // feature counts used for precision/recall
};

// FD against the reference, IS of the measured set, precision/recall with k = 3 when both sides kept features
// (the same number from each side: the smaller count).
MetricValues compare_to_reference(const ImageSetMeasure& measure, const Reference& reference,
                                  const std::string& where);

}  // namespace pidistill
