// PNG and JPEG images as the image-folder and EDM-zip datasets decode them (the first byte's parity picks the
// file name's extension; the decoder looks at the content).
#include "fuzz_common.h"
#include "pidistill/data/image_folder_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::string name = size && (data[0] & 1) ? "a.jpg" : "a.png";
  pidistill::fuzz::expect_only_errors("image", [&] {
    pidistill::images_to_dataset({name}, [&](const std::string&) { return bytes; }, "", "fuzz");
  });
  return 0;
}
