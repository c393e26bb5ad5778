#include "pidistill/util/build_info.h"

#include <dlfcn.h>
#include <torch/version.h>

namespace pidistill {

std::string malloc_name() {
  // gperftools defines malloc as an alias of tc_malloc, so the two resolve to one address when it is in charge.
  void* tc = dlsym(RTLD_DEFAULT, "tc_malloc");
  return tc != nullptr && tc == dlsym(RTLD_DEFAULT, "malloc") ? "tcmalloc" : "glibc";
}

std::string build_info() { return std::string("LibTorch ") + TORCH_VERSION + ", malloc " + malloc_name(); }

}  // namespace pidistill
