// Sixteen images from a PID student (one network call each) through the installed library, as one PNG grid:
//   generate_one_call [STUDENT.safetensors] [OUT.png]
// Built against an installed pidistill: README.md, "Use it from C++"; CTest DocsCommands.install_example runs it.
#include <pidistill/pidistill.h>

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  const std::string net_file = argc > 1 ? argv[1] : "models/fashion-mnist-pid-student.safetensors";
  const std::string out = argc > 2 ? argv[2] : "grid.png";
  try {
    // Any network file: a PID student (one call per image), a teacher (EDM's sampler), an EDM .pkl.
    const pidistill::LoadedNet net = pidistill::load_net(net_file);
    // EDM's seed convention: image i comes from its own seed, so it does not depend on the batch.
    const std::vector<int64_t> seeds = pidistill::parse_seeds("0-15");
    const at::Tensor images = pidistill::generate_images(net, seeds);  // [16, C, H, W] float64 in [-1, 1]
    pidistill::write_png_grid(out, images.to(at::kFloat));            // a 4x4 grid, written atomically
    std::cout << "wrote " << out << ": " << images.size(0) << " images of " << images.size(1) << "x"
              << images.size(2) << "x" << images.size(3) << "\n";
  } catch (const pidistill::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
