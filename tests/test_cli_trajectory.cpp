// `pidistill trajectory` through the binary: at t = T the student is exactly T z (the boundary condition built into
// x_theta), so it meets the teacher's trajectory there; the PNG holds a student and a teacher row per seed.
#include "pidistill/util/image_io.h"
#include "test_cli_util.h"

#include <nlohmann/json.hpp>

namespace pidistill::test {
namespace {

const std::string kTeacher = std::string(PIDISTILL_SOURCE_DIR) + "/models/fashion-mnist-ddpmpp-teacher.safetensors";

TEST(CliTrajectory, StudentMeetsTeacherAtTAndPictureHasTwoRowsPerSeed) {
  const std::string out = scratch_dir() + "/traj.png";
  CliResult r = run_cli("trajectory --threads 1 --student " + test::quoted(kTeacher) + " --teacher " +
                        test::quoted(kTeacher) + " --seeds 0-1 --times 80,5,0.002 --substeps 2 --out " +
                        test::quoted(out));
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output.substr(r.output.rfind("{")));
  auto rms = j.at("rms_student_vs_teacher").get<std::vector<double>>();
  ASSERT_EQ(rms.size(), 3u);
  std::cout << j.dump() << "\n";
  EXPECT_LT(rms[0], 1e-4);  // x_theta(z, 80) = 80 z = the teacher's starting point
  EXPECT_GT(rms[2], 0.1);   // the untrained student (teacher weights) is far from the ODE at t = 0.002
  at::Tensor png = read_image(out);  // [H, W, C]
  EXPECT_EQ(png.size(0), 4 * 32);    // 2 seeds x (student row + teacher row)
  EXPECT_EQ(png.size(1), 3 * 32);    // 3 times
  EXPECT_ONE_LINE_ERROR(run_cli("trajectory --student " + test::quoted(kTeacher) + " --teacher " +
                                test::quoted(kTeacher) + " --times 5,80 --out " + test::quoted(out)));
  EXPECT_ONE_LINE_ERROR(run_cli("trajectory --student " + test::quoted(kTeacher) + " --teacher " +
                                test::quoted(kTeacher) + " --times 100,5 --out " + test::quoted(out)));
}

}  // namespace
}  // namespace pidistill::test
