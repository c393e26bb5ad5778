// The Fashion-MNIST feature classifier: VGG-style stages of 3x3 conv + BatchNorm + ReLU, max-pooled, then a
// global average (the features) and one linear layer (the logits).
#include "pidistill/metrics/classifier.h"

#include "pidistill/io/safetensors.h"
#include "pidistill/util/error.h"

#include <ATen/ATen.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

namespace pidistill {

using nlohmann::json;

namespace {
const char* kClassifierKey = "pidistill_classifier";
}

std::string to_json(const ClassifierConfig& c) {
  return json{{"channels", c.channels}, {"resolution", c.resolution}, {"num_classes", c.num_classes},
              {"widths", c.widths},     {"blocks", c.blocks},         {"dropout", c.dropout}}
      .dump();
}

ClassifierConfig classifier_config_from_json(const std::string& text, const std::string& where) {
  ClassifierConfig c;
  try {
    json j = json::parse(text);
    c.channels = j.at("channels").get<int>();
    c.resolution = j.at("resolution").get<int>();
    c.num_classes = j.at("num_classes").get<int>();
    c.widths = j.at("widths").get<std::vector<int>>();
    c.blocks = j.at("blocks").get<std::vector<int>>();
    c.dropout = j.value("dropout", c.dropout);
  } catch (const std::exception& e) {
    fail(where, std::string("bad classifier config metadata (") + e.what() + ")");
  }
  bool ok = c.channels >= 1 && c.channels <= 4 && c.resolution >= 4 && c.resolution <= 1024 &&
            c.num_classes >= 2 && c.num_classes <= 100000 && !c.widths.empty() &&
            c.widths.size() == c.blocks.size() && c.widths.size() <= 8;
  for (size_t i = 0; ok && i < c.widths.size(); ++i)
    ok = c.widths[i] >= 1 && c.widths[i] <= 4096 && c.blocks[i] >= 1 && c.blocks[i] <= 8;
  if (!ok) fail(where, "classifier config out of range: " + text);
  return c;
}

Classifier::Classifier(const ClassifierConfig& c) : config(c) {
  int in = c.channels;
  for (size_t s = 0; s < c.widths.size(); ++s) {
    for (int b = 0; b < c.blocks[s]; ++b) {
      convs->push_back(
          torch::nn::Conv2d(torch::nn::Conv2dOptions(in, c.widths[s], 3).padding(1).bias(false)));
      norms->push_back(torch::nn::BatchNorm2d(c.widths[s]));
      in = c.widths[s];
    }
  }
  register_module("convs", convs);
  register_module("norms", norms);
  head = register_module("head", torch::nn::Linear(in, c.num_classes));
}

at::Tensor Classifier::features(const at::Tensor& x) {
  at::Tensor h = x;  // [N, C, R, R]
  size_t layer = 0;
  for (size_t s = 0; s < config.widths.size(); ++s) {
    for (int b = 0; b < config.blocks[s]; ++b, ++layer) {
      h = convs[layer]->as<torch::nn::Conv2d>()->forward(h);
      h = at::relu(norms[layer]->as<torch::nn::BatchNorm2d>()->forward(h));
    }
    if (s + 1 < config.widths.size()) h = at::max_pool2d(h, {2, 2});
  }
  return h.mean({2, 3});  // [N, widths.back()]
}

at::Tensor Classifier::logits_from_features(const at::Tensor& features) {
  return head->forward(at::dropout(features, config.dropout, is_training()));
}

at::Tensor classifier_input(const at::Tensor& images, const ClassifierConfig& c, const std::string& where) {
  check_images(images, where);
  if (images.size(1) != c.channels)
    fail(where, "the classifier takes " + std::to_string(c.channels) + "-channel images, got " +
                    std::to_string(images.size(1)));
  at::Tensor x = images.to(at::kFloat) / 127.5 - 1;  // [N, C, H, W] in [-1, 1]
  const int64_t h = x.size(2), w = x.size(3);
  if (h == w && h < c.resolution && (c.resolution - h) % 2 == 0) {
    const int64_t p = (c.resolution - h) / 2;
    x = at::constant_pad_nd(x, {p, p, p, p}, -1);  // black frame, as --pad 32 does to the training images
  } else if (h != c.resolution || w != c.resolution) {
    fail(where, "the classifier takes " + std::to_string(c.resolution) + "x" + std::to_string(c.resolution) +
                    " images (or smaller, centred), got " + std::to_string(h) + "x" + std::to_string(w));
  }
  return x;
}

void save_classifier(const std::string& path, Classifier& net,
                     const std::map<std::string, std::string>& extra) {
  NamedTensors tensors;
  for (const auto& p : net.named_parameters()) tensors.emplace_back(p.key(), p.value().detach());
  for (const auto& b : net.named_buffers()) tensors.emplace_back(b.key(), b.value().detach());
  std::map<std::string, std::string> meta = extra;
  meta[kClassifierKey] = "1";
  meta["config"] = to_json(net.config);
  write_safetensors(path, tensors, meta);
}

std::shared_ptr<Classifier> load_classifier(const std::string& path) {
  TensorFile file = read_safetensors(path);
  if (file.meta(kClassifierKey) != "1")
    fail(path,
         "not a pidistill classifier file (no metadata pidistill_classifier=1); hint: make one with "
         "pidistill train-classifier, or pass the Inception TorchScript file");
  const ClassifierConfig config = classifier_config_from_json(file.meta("config"), path);
  // Why count first: the config's bounds still allow a network of tens of gigabytes; every parameter must come
  // from the file, so a file holding fewer elements is refused before the network is built.
  int64_t needed = 0, have = 0;
  int64_t in = config.channels;
  for (size_t s = 0; s < config.widths.size(); ++s)
    for (int b = 0; b < config.blocks[s]; ++b) {
      needed += in * config.widths[s] * 9 + 2 * int64_t(config.widths[s]);  // conv 3x3, batch norm
      in = config.widths[s];
    }
  needed += in * config.num_classes + config.num_classes;  // head
  for (const auto& [name, t] : file.tensors) have += t.numel();
  if (needed > have)
    fail(path, "the classifier config describes " + std::to_string(needed) +
                   " parameters but the file's tensors hold only " + std::to_string(have) + " elements (damaged file)");
  auto net = std::make_shared<Classifier>(config);
  torch::NoGradGuard no_grad;
  size_t expected = 0;
  auto load = [&](auto items) {
    for (auto& item : items) {
      ++expected;
      if (!file.has(item.key())) fail(path, "classifier tensor '" + item.key() + "' missing");
      const at::Tensor& t = file.get(item.key());
      if (t.sizes() != item.value().sizes())
        fail(path, "classifier tensor '" + item.key() + "' has the wrong shape");
      item.value().copy_(t);
    }
  };
  load(net->named_parameters());
  load(net->named_buffers());
  if (file.tensors.size() != expected)
    fail(path, "classifier file has " + std::to_string(file.tensors.size()) + " tensors, its config needs " +
                   std::to_string(expected));
  net->eval();
  return net;
}

namespace {

class ClassifierDetector : public FeatureDetector {
 public:
  explicit ClassifierDetector(std::string path) : path_(std::move(path)), net_(load_classifier(path_)) {}
  std::string name() const override { return "FD-FMNIST"; }
  std::string file() const override { return path_; }
  int64_t feature_dim() const override { return net_->config.widths.back(); }
  DetectorOutput run(const at::Tensor& images, bool want_probs) override {
    torch::NoGradGuard no_grad;
    DetectorOutput out;
    out.features = net_->features(classifier_input(images, net_->config, path_));  // [N, D]
    if (want_probs) out.probs = at::softmax(net_->logits_from_features(out.features), 1);
    return out;
  }

 private:
  std::string path_;
  std::shared_ptr<Classifier> net_;
};

}  // namespace

std::unique_ptr<FeatureDetector> load_classifier_detector(const std::string& path) {
  return std::make_unique<ClassifierDetector>(path);
}

double classifier_accuracy(Classifier& net, const at::Tensor& images, const at::Tensor& labels,
                           int64_t batch) {
  torch::NoGradGuard no_grad;
  const bool was_training = net.is_training();
  net.eval();
  int64_t correct = 0;
  for (int64_t begin = 0; begin < images.size(0); begin += batch) {
    int64_t end = std::min(images.size(0), begin + batch);
    at::Tensor x = classifier_input(images.slice(0, begin, end), net.config, "accuracy");
    correct += (net.forward(x).argmax(1) == labels.slice(0, begin, end)).sum().item<int64_t>();
  }
  net.train(was_training);
  return images.size(0) ? double(correct) / double(images.size(0)) : 0;
}

}  // namespace pidistill
