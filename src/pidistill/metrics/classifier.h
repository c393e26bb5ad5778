// A small CNN image classifier (Fashion-MNIST by default) whose pool features and class probabilities stand
// in for Inception's where Inception cannot be had: FD-FMNIST and a class-diversity score, through
// FeatureDetector.
#pragma once
#include "pidistill/metrics/feature_detector.h"

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pidistill {

struct ClassifierConfig {
  int channels = 1;      // Image channels.
  int resolution = 32;   // Image size; 28x28 inputs are zero-padded to it (our nets' 32x32 frame).
  int num_classes = 10;  // Fashion-MNIST's ten garments.
  std::vector<int> widths = {32, 64, 128};  // Channels of each stage; a 2x max-pool follows every stage.
  std::vector<int> blocks = {1, 2, 2};      // 3x3 conv + BatchNorm + ReLU layers per stage.
  double dropout = 0.3;                     // Before the output layer, training only.
};

std::string to_json(const ClassifierConfig& config);
ClassifierConfig classifier_config_from_json(const std::string& text, const std::string& where);

struct Classifier : torch::nn::Module {
  explicit Classifier(const ClassifierConfig& config);
  // x: [N, C, R, R] float in [-1, 1]. features: [N, widths.back()] (global average of the last stage, after
  // ReLU).
  at::Tensor features(const at::Tensor& x);
  at::Tensor logits_from_features(const at::Tensor& features);  // [N, num_classes]
  at::Tensor forward(const at::Tensor& x) { return logits_from_features(features(x)); }

  ClassifierConfig config;
  torch::nn::ModuleList convs, norms;
  torch::nn::Linear head{nullptr};
};

// uint8 [N, C, H, W] -> float [N, C, R, R] in [-1, 1] (x / 127.5 - 1, as our datasets), 28 -> 32 zero-padded.
at::Tensor classifier_input(const at::Tensor& images, const ClassifierConfig& config,
                            const std::string& where);

// A classifier file: safetensors with metadata pidistill_classifier=1, config (JSON) and whatever `extra`
// says (test accuracy, the command that trained it). Written atomically.
void save_classifier(const std::string& path, Classifier& net,
                     const std::map<std::string, std::string>& extra = {});
std::shared_ptr<Classifier> load_classifier(const std::string& path);  // eval mode; Error naming the file

// The classifier as a FeatureDetector (name "FD-FMNIST" for the Fashion-MNIST classifier).
std::unique_ptr<FeatureDetector> load_classifier_detector(const std::string& path);

// Fraction of `images` (uint8 [N, C, H, W]) whose argmax class equals labels [N].
double classifier_accuracy(Classifier& net, const at::Tensor& images, const at::Tensor& labels,
                           int64_t batch = 500);

}  // namespace pidistill
