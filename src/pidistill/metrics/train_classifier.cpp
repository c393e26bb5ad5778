#include "pidistill/metrics/train_classifier.h"

#include "pidistill/optim/adam.h"
#include "pidistill/util/error.h"
#include "pidistill/util/progress.h"
#include "pidistill/util/stop_signal.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <iostream>

namespace pidistill {

namespace {

// x: [B, C, R, R] in [-1, 1]. Each image moved by up to `shift` pixels each way, uncovered pixels black.
at::Tensor random_shift(const at::Tensor& x, int shift, at::Generator& gen) {
  if (shift <= 0) return x;
  const int64_t r = x.size(2);
  at::Tensor padded = at::constant_pad_nd(x, {shift, shift, shift, shift}, -1);  // [B, C, R+2s, R+2s]
  at::Tensor offsets = at::randint(0, 2 * shift + 1, {x.size(0), 2}, gen, at::kLong);
  auto o = offsets.accessor<int64_t, 2>();
  std::vector<at::Tensor> out;
  out.reserve(x.size(0));
  for (int64_t i = 0; i < x.size(0); ++i)
    out.push_back(padded[i].narrow(1, o[i][0], r).narrow(2, o[i][1], r));
  return at::stack(out);
}

}  // namespace

ClassifierTrainResult train_classifier(const ClassifierTrainOptions& o, const at::Tensor& train_images,
                                       const at::Tensor& train_labels, const at::Tensor& test_images,
                                       const at::Tensor& test_labels) {
  if (o.epochs < 1) fail("--epochs", "must be at least 1");
  if (o.batch < 1 || o.batch > train_images.size(0)) fail("--batch", "must be in [1, training set size]");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) fail("--lr", "must be a positive finite number");
  if (o.shift < 0 || o.shift > o.config.resolution / 4) fail("--shift", "must be in [0, resolution / 4]");
  const int64_t max_label = std::max(train_labels.max().item<int64_t>(), test_labels.max().item<int64_t>());
  if (max_label >= o.config.num_classes || train_labels.min().item<int64_t>() < 0)
    fail("--data", "labels outside [0, " + std::to_string(o.config.num_classes) + ")");

  torch::manual_seed(o.seed);  // the layers' default initialisation draws from torch's global generator
  Classifier net(o.config);
  net.train();
  std::vector<at::Tensor> params;
  for (auto& p : net.parameters()) params.push_back(p);
  AdamConfig adam_config;
  adam_config.lr = o.lr;
  adam_config.weight_decay = o.weight_decay;
  Adam adam(params, adam_config);
  at::Generator gen = at::detail::createCPUGenerator(o.seed + 1);

  const int64_t n = train_images.size(0), steps_per_epoch = n / o.batch, total = steps_per_epoch * o.epochs;
  install_stop_handler();
  auto start = std::chrono::steady_clock::now();
  ClassifierTrainResult result;
  Progress progress("train-classifier", total, "step");
  int64_t step = 0;
  for (int epoch = 0; epoch < o.epochs && !stop_requested(); ++epoch) {
    at::Tensor order = at::randperm(n, gen, at::kLong);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    for (int64_t b = 0; b < steps_per_epoch && !stop_requested(); ++b, ++step) {
      at::Tensor idx = order.slice(0, b * o.batch, (b + 1) * o.batch);
      at::Tensor x = classifier_input(train_images.index_select(0, idx), o.config, "--data");  // [B, C, R, R]
      if (o.xflip) {
        at::Tensor flip = (at::rand({x.size(0)}, gen) < 0.5).view({-1, 1, 1, 1});
        x = at::where(flip, x.flip({3}), x);
      }
      x = random_shift(x, o.shift, gen);
      at::Tensor y = train_labels.index_select(0, idx);
      adam.config.lr = o.lr * 0.5 * (1 + std::cos(M_PI * double(step) / double(total)));
      adam.zero_grad();
      at::Tensor logits = net.forward(x);
      at::Tensor loss = at::cross_entropy_loss(logits, y);
      loss.backward();
      adam.step();
      loss_sum += loss.item<double>() * double(x.size(0));
      correct += (logits.argmax(1) == y).sum().item<int64_t>();
      seen += x.size(0);
      if (b % 20 == 0)
        progress.update(step + 1, "loss " + std::to_string(loss_sum / double(seen)).substr(0, 6));
    }
    if (seen == 0) break;
    result.test_accuracy = classifier_accuracy(net, test_images, test_labels);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    nlohmann::json line = {{"epoch", epoch + 1},
                           {"train_loss", loss_sum / double(seen)},
                           {"train_accuracy", double(correct) / double(seen)},
                           {"test_accuracy", result.test_accuracy},
                           {"seconds", result.seconds}};
    std::cout << "\n" << line.dump() << std::endl;
    save_classifier(o.out, net,
                    {{"test_accuracy", std::to_string(result.test_accuracy)},
                     {"epochs", std::to_string(epoch + 1)},
                     {"command", o.command}});
  }
  progress.finish();
  return result;
}

}  // namespace pidistill
