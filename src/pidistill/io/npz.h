// numpy's .npy and .npz formats (np.save / np.savez): EDM's reference statistics are npz files of float64 arrays.
#pragma once
#include "pidistill/io/safetensors.h"

#include <string>

namespace pidistill {

// Reads every array of an npz file (a zip of NAME.npy entries, stored or deflated). Supported dtypes: little-endian
// f8, f4, f2, i8, i4, i2, i1, u1, b1, C order or Fortran order (returned as C-order tensors). Anything else (object
// arrays, big-endian, truncated data) is an Error naming the file and the array.
NamedTensors read_npz(const std::string& path);

// Writes the tensors as an uncompressed npz (np.savez's layout: entries NAME.npy, npy format 1.0 headers, C order),
// atomically. np.load reads it unchanged.
void write_npz(const std::string& path, const NamedTensors& arrays);

}  // namespace pidistill
