// numpy's .npy array format (one array: magic, version, a Python-dict header, raw data), the entries of an
// npz.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace pidistill {

// Parses one .npy (versions 1.0, 2.0, 3.0). Supported dtypes: little-endian f8 f4 f2 i8 i4 i2, and i1 u1 b1;
// C or Fortran order (returned C-contiguous on the CPU). Any fault is an Error "PATH: array 'NAME': ...".
at::Tensor parse_npy(const std::string& path, const std::string& name, const std::string& bytes);

// The .npy bytes np.save writes for `array` (version 1.0, or 2.0 when the header needs it; C order; the
// header padded with spaces and '\n' so the data start at a multiple of 64). Error naming PATH and NAME for
// dtypes numpy cannot hold (bfloat16, complex).
std::string npy_bytes(const std::string& path, const std::string& name, const at::Tensor& array);

}  // namespace pidistill
