// `pidistill train-classifier`: the Fashion-MNIST classifier whose features give FD-FMNIST
// (metrics/classifier.h).
#include "cli/commands.h"
#include "pidistill/data/dataset.h"
#include "pidistill/metrics/train_classifier.h"
#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#include <iostream>
#include <memory>

namespace pidistill::cli {
namespace {

struct TrainClassifierOptions {
  std::string data;  // --data: IDX folder with train-* and t10k-* files
  ClassifierTrainOptions train;
};

void run_train_classifier(const TrainClassifierOptions& o, const std::string& command) {
  if (o.train.out.empty()) fail("--out", "required: the classifier file to write (.safetensors)");
  DatasetOptions train_opts, test_opts;
  train_opts.split = "train";
  test_opts.split = "t10k";
  Dataset train = open_dataset(o.data, train_opts), test = open_dataset(o.data, test_opts);
  if (!train.has_labels() || !test.has_labels())
    fail(o.data, "the classifier needs labelled train and t10k splits");
  ClassifierTrainOptions t = o.train;
  t.config.channels = int(train.channels());
  t.config.num_classes = int(std::max(train.label_dim(), test.label_dim()));
  t.command = command;
  ClassifierTrainResult r =
      train_classifier(t, train.raw_images(), train.raw_labels(), test.raw_images(), test.raw_labels());
  std::cout << "Classifier -> " << t.out << ": test accuracy " << r.test_accuracy << " on " << test.size()
            << " images, " << r.seconds << " s\n";
}

}  // namespace

void add_train_classifier_command(CLI::App& app) {
  auto o = std::make_shared<TrainClassifierOptions>();
  CLI::App* cmd = app.add_subcommand(
      "train-classifier",
      "Train the small CNN classifier whose features give FD-FMNIST (Fashion-MNIST by default)");
  cmd->add_option("--data", o->data,
                  "IDX folder with train-* and t10k-* files (e.g. /usr/share/datasets/fashion-mnist)")
      ->required();
  cmd->add_option("--out", o->train.out,
                  "Classifier file to write (.safetensors), rewritten after every epoch")
      ->required();
  cmd->add_option("--epochs", o->train.epochs, "Passes over the training set")->capture_default_str();
  cmd->add_option("--batch", o->train.batch, "Images per step")->capture_default_str();
  cmd->add_option("--lr", o->train.lr, "Peak learning rate (cosine decay to 0)")
      ->check(kFinitePositive)
      ->capture_default_str();
  cmd->add_option("--seed", o->train.seed, "Seed of weights, batch order and augmentation")
      ->capture_default_str();
  cmd->add_option("--shift", o->train.shift, "Random translation in pixels")->capture_default_str();
  cmd->add_option("--widths", o->train.config.widths, "Channels per stage")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--blocks", o->train.config.blocks, "Conv layers per stage")
      ->delimiter(',')
      ->capture_default_str();
  cmd->callback([o, cmd] {
    std::string command = "pidistill train-classifier";
    for (const auto* opt : cmd->get_options())
      if (opt->count() > 0 && opt->get_name() != "--help")
        for (const auto& r : opt->results()) command += " " + opt->get_name() + " " + r;
    run_train_classifier(*o, command);
  });
}

}  // namespace pidistill::cli
