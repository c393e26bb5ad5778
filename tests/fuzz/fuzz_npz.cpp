// numpy: one .npy (magic, version, the Python-dict header, data) or an .npz (a zip of them).
#include "fuzz_common.h"
#include "pidistill/io/npy.h"
#include "pidistill/io/npz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  pidistill::fuzz::expect_only_errors("npz", [&] {
    if (bytes.compare(0, 2, "PK") == 0)
      pidistill::read_npz(pidistill::fuzz::write_input("in.npz", data, size));
    else
      pidistill::parse_npy("in.npy", "a", bytes);
  });
  return 0;
}
