// CIFAR-10 binary batches: records of one label byte and 3072 pixel bytes.
#include "fuzz_common.h"
#include "pidistill/data/cifar10_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pidistill::fuzz::write_input("data_batch_1.bin", data, size);
  pidistill::fuzz::expect_only_errors("cifar", [&] { pidistill::read_cifar10_dataset(path); });
  return 0;
}
