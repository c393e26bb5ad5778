// Training the feature classifier of FD-FMNIST: Adam with a cosine learning rate, random flips and shifts,
// test accuracy after every epoch, the file rewritten (atomically) after every epoch.
#pragma once
#include "pidistill/metrics/classifier.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace pidistill {

struct ClassifierTrainOptions {
  ClassifierConfig config;
  int epochs = 8;              // Passes over the training set.
  int64_t batch = 128;         // Images per step.
  double lr = 2e-3;            // Peak Adam learning rate, decayed to 0 by a cosine over all steps.
  double weight_decay = 5e-4;  // L2 penalty (Adam's weight_decay).
  int shift = 2;               // Random translation of up to this many pixels (black fill).
  bool xflip = true;           // Random left-right mirroring.
  uint64_t seed = 0;           // Initial weights, batch order and augmentation.
  std::string out;             // The classifier file.
  std::string command;         // Recorded in the file's metadata.
};

struct ClassifierTrainResult {
  double test_accuracy = 0;
  double seconds = 0;
};

// train_images/test_images: uint8 [N, C, H, W]; labels int64 [N]. Prints one JSON line per epoch on stdout.
ClassifierTrainResult train_classifier(const ClassifierTrainOptions& options, const at::Tensor& train_images,
                                       const at::Tensor& train_labels, const at::Tensor& test_images,
                                       const at::Tensor& test_labels);

}  // namespace pidistill
