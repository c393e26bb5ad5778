// torch.save zip and legacy files and plain pickles through the restricted pickle machine, then what the
// commands do with the result: flatten the state dict, read an EDM network pickle.
#include "fuzz_common.h"
#include "pidistill/io/edm_pickle.h"
#include "pidistill/io/torch_pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pidistill::fuzz::write_input("in.pt", data, size);
  pidistill::fuzz::expect_only_errors("torch_pickle", [&] {
    const pidistill::TorchPickle p = pidistill::read_torch_pickle(path);
    try {
      pidistill::flatten_tensors(p.root, path);
    } catch (const pidistill::Error&) {
    }
    pidistill::edm_pickle_from(p);
  });
  return 0;
}
