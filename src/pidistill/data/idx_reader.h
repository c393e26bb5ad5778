// MNIST / Fashion-MNIST IDX files (gzipped or raw): idx3 images with their idx1 labels when present.
#pragma once
#include <cstdint>
#include <string>

#include "pidistill/data/dataset.h"

namespace pidistill {

// path: a folder holding SPLIT-images-idx3-ubyte[.gz] (+ SPLIT-labels-idx1-ubyte[.gz]), or an images file whose
// labels file is found by replacing "images-idx3" with "labels-idx1" in its name. Error naming file and offset.
Dataset read_idx_dataset(const std::string& path, const std::string& split = "train");

// The whole file (at least its first `first_bytes`), gunzipped when it is gzip (zlib reads raw files as they
// are). An IDX stream that goes on past the size its header describes is an Error as soon as it does.
std::string read_maybe_gzip(const std::string& path, size_t first_bytes = SIZE_MAX);

}  // namespace pidistill
