// CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes (3x32x32, channel-major).
#pragma once
#include <string>

#include "pidistill/data/dataset.h"

namespace pidistill {

// path: one .bin batch, or a folder with data_batch_1..5.bin (split "train") or test_batch.bin ("test").
Dataset read_cifar10_dataset(const std::string& path, const std::string& split = "train");

}  // namespace pidistill
