// MNIST / Fashion-MNIST IDX image files, raw or gzipped.
#include "fuzz_common.h"
#include "pidistill/data/idx_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pidistill::fuzz::write_input("train-images-idx3-ubyte", data, size);
  pidistill::fuzz::expect_only_errors("idx", [&] { pidistill::read_idx_dataset(path); });
  return 0;
}
