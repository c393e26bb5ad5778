// zip / zip64: end records, central directory, local headers, stored and deflated records, CRC.
#include "fuzz_common.h"
#include "pidistill/io/zip_archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pidistill::fuzz::expect_only_errors("zip", [&] {
    pidistill::ZipArchive zip("in.zip", std::string(reinterpret_cast<const char*>(data), size));
    size_t n = 0;
    for (const auto& e : zip.entries()) {
      if (++n > 64) break;
      try {
        zip.read(e);
      } catch (const pidistill::Error&) {
      }
    }
  });
  return 0;
}
