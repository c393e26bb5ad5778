// safetensors: header length, JSON header (nesting, dtypes, shapes), data offsets against the file.
#include "fuzz_common.h"
#include "pidistill/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pidistill::fuzz::write_input("in.safetensors", data, size);
  pidistill::fuzz::expect_only_errors("safetensors", [&] { pidistill::read_safetensors(path); });
  return 0;
}
