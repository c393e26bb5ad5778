// The bundled one-call PID student: on a fresh clone it draws Fashion-MNIST garments in one network call,
// measured with FD-FMNIST on 300 one-call samples against the 10,000 test images, and the student it was
// trained from (the teacher's weights as a student, step 0) fails the same check.
#include "test_cli_util.h"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace pidistill::test {
namespace {

const std::string kModels = std::string(PIDISTILL_SOURCE_DIR) + "/models";
const std::string kStudent = kModels + "/fashion-mnist-pid-student.safetensors";
const std::string kTeacher = kModels + "/fashion-mnist-ddpmpp-teacher.safetensors";
const std::string kData = "/usr/share/datasets/fashion-mnist";
// Measured on the bundled file: 6.81 (300 images, seeds 0-299); the threshold leaves a margin of 1.5x.
// The step-0 student measured 95.9 the same way.
constexpr double kThreshold = 10.2;

double fd_of(const std::string& ref, const std::string& net_args) {
  CliResult r =
      run_cli("fid --threads 1 --ref " + test::quoted(ref) + " --features fmnist --seeds 0-299 " + net_args);
  EXPECT_EQ(r.code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output.substr(r.output.rfind("\n{") + 1));
  std::cout << j.dump() << "\n";
  return j.at("fd").get<double>();
}

TEST(BundledStudent, DrawsGarmentsInOneCallAndTheStep0StudentDoesNot) {
  if (!std::filesystem::exists(kData + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist absent";
  const std::string ref = scratch_dir() + "/fmnist-test.npz";
  CliResult r = run_cli("ref --threads 1 --data " + kData +
                        " --split t10k --pad 32 --features fmnist --out " + test::quoted(ref));
  ASSERT_EQ(r.code, 0) << r.output;
  const double student = fd_of(ref, "--net " + test::quoted(kStudent));
  const double step0 = fd_of(ref, "--net " + test::quoted(kTeacher) + " --as-student");
  std::cout << "FD-FMNIST (300 one-call images): bundled student " << student << ", step-0 student " << step0
            << ", threshold " << kThreshold << "\n";
  EXPECT_LT(student, kThreshold);
  EXPECT_GT(step0, kThreshold);
}

}  // namespace
}  // namespace pidistill::test
