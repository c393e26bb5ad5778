// What `generate` promises on CPU: the same command gives the same images bit for bit; another --threads or
// --batch may regroup the float32 convolutions (oneDNN and OpenBLAS pick kernels and splits by shape and
// thread count), which moves values by ~1e-4 (measured 7.5e-5), not more.
#include "pidistill/io/safetensors.h"
#include "test_cli_util.h"
#include "test_common.h"

namespace pidistill::test {
namespace {

const std::string kTeacher =
    std::string(PIDISTILL_SOURCE_DIR) + "/models/fashion-mnist-ddpmpp-teacher.safetensors";

at::Tensor generate(int threads, int batch) {
  const std::string out =
      scratch_dir() + "/g_" + std::to_string(threads) + "_" + std::to_string(batch) + ".safetensors";
  CliResult r =
      run_cli("generate --threads " + std::to_string(threads) + " --batch " + std::to_string(batch) +
              " --net " + test::quoted(kTeacher) + " --steps 3 --seeds 0-11 --out " + test::quoted(out));
  EXPECT_EQ(r.code, 0) << r.output;
  return read_safetensors(out).get("x_final");
}

TEST(CliDeterminism, RepeatableBitForBitAndWithinFloat32AcrossThreadsAndBatch) {
  at::Tensor a = generate(1, 12), again = generate(1, 12), b = generate(2, 12), c = generate(1, 5);
  EXPECT_TRUE(at::equal(a, again)) << "max diff " << (a - again).abs().max().item<double>();
  const double threads_diff = (a - b).abs().max().item<double>(),
               batch_diff = (a - c).abs().max().item<double>();
  std::cout << "max |x(1 thread) - x(2 threads)| = " << threads_diff
            << ", max |x(batch 12) - x(batch 5)| = " << batch_diff << "\n";
  EXPECT_LT(threads_diff, 1e-3);
  EXPECT_LT(batch_diff, 1e-3);
}

}  // namespace
}  // namespace pidistill::test
