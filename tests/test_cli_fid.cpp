// `pidistill ref` and `pidistill fid` through the binary, with the golden TorchScript stand-in of Inception:
// a set against itself gives FD 0 and precision/recall 1; teacher and folder paths agree; bad input is one
// line.
#include "pidistill/io/npz.h"
#include "test_cli_util.h"
#include "test_common.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace pidistill::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kTeacher =
    std::string(PIDISTILL_SOURCE_DIR) + "/models/fashion-mnist-ddpmpp-teacher.safetensors";
const std::string kDetector = golden("fid/tiny_detector.pt");

// The last line of the output that parses as a JSON object.
json last_json(const std::string& output) {
  json found;
  size_t start = 0;
  while (start < output.size()) {
    size_t end = output.find('\n', start);
    if (end == std::string::npos) end = output.size();
    std::string line = output.substr(start, end - start);
    if (!line.empty() && line[0] == '{') found = json::parse(line, nullptr, false);
    start = end + 1;
  }
  return found;
}

// 12 teacher images (Heun, 2 steps) as PNGs, made once per test process.
const std::string& image_dir() {
  static const std::string dir = [] {
    std::string d = scratch_dir() + "/images";
    CliResult r = run_cli("generate --threads 1 --net " + test::quoted(kTeacher) +
                          " --steps 2 --seeds 0-11 --outdir " + test::quoted(d));
    EXPECT_EQ(r.code, 0) << r.output;
    return d;
  }();
  return dir;
}

const std::string& ref_file() {
  static const std::string path = [] {
    std::string p = scratch_dir() + "/ref.npz";
    CliResult r = run_cli("ref --threads 1 --data " + test::quoted(image_dir()) + " --out " +
                          test::quoted(p) + " --detector " + test::quoted(kDetector));
    EXPECT_EQ(r.code, 0) << r.output;
    json j = last_json(r.output);
    EXPECT_EQ(j.value("images", 0), 12);
    EXPECT_EQ(j.value("dims", 0), 2048);
    return p;
  }();
  return path;
}

TEST(CliFid, FolderAgainstItsOwnReference) {
  CliResult r = run_cli("fid --threads 1 --images " + test::quoted(image_dir()) + " --ref " +
                        test::quoted(ref_file()) + " --detector " + test::quoted(kDetector));
  ASSERT_EQ(r.code, 0) << r.output;
  json j = last_json(r.output);
  std::cout << j.dump() << "\n";
  EXPECT_NEAR(j.at("fd").get<double>(), 0, 1e-4);
  EXPECT_EQ(j.at("precision").get<double>(), 1.0);
  EXPECT_EQ(j.at("recall").get<double>(), 1.0);
  EXPECT_EQ(j.at("images").get<int>(), 12);
  EXPECT_EQ(j.at("metric").get<std::string>(), "FID");
  EXPECT_TRUE(j.contains("is_mean"));
}

TEST(CliFid, NetworkEqualsItsPngs) {
  // The network path quantises exactly like the PNG writer, so the same seeds give the same statistics.
  const std::string stats = scratch_dir() + "/net_stats.npz";
  CliResult r = run_cli("fid --threads 1 --net " + test::quoted(kTeacher) +
                        " --steps 2 --seeds 0-11 --batch 5 --ref " + test::quoted(ref_file()) +
                        " --detector " + test::quoted(kDetector) + " --save-stats " + test::quoted(stats));
  ASSERT_EQ(r.code, 0) << r.output;
  json j = last_json(r.output);
  std::cout << j.dump() << "\n";
  EXPECT_NEAR(j.at("fd").get<double>(), 0, 1e-4);
  EXPECT_EQ(j.at("nfe").get<int>(), 3);
  EXPECT_EQ(j.at("images").get<int>(), 12);
  // Another seed range is another set: FD > 0. --repeat 2 uses 0-11 and 12-23 and reports both.
  CliResult rep = run_cli("fid --threads 1 --net " + test::quoted(kTeacher) +
                          " --steps 2 --seeds 0-11 --repeat 2 --ref " + test::quoted(ref_file()) +
                          " --detector " + test::quoted(kDetector));
  ASSERT_EQ(rep.code, 0) << rep.output;
  json jr = last_json(rep.output);
  ASSERT_EQ(jr.at("runs").size(), 2u);
  EXPECT_EQ(jr["runs"][1].at("seeds").get<std::string>(), "12-23");
  EXPECT_NEAR(jr["runs"][0].at("fd").get<double>(), 0, 1e-4);
  EXPECT_GT(jr["runs"][1].at("fd").get<double>(), 1e-3);
  EXPECT_EQ(jr.at("fd_min").get<double>(), jr["runs"][0].at("fd").get<double>());
  // --stats: FD of two statistics files.
  CliResult s = run_cli("fid --stats " + test::quoted(stats) + " --ref " + test::quoted(ref_file()));
  ASSERT_EQ(s.code, 0) << s.output;
  EXPECT_NEAR(last_json(s.output).at("fd").get<double>(), 0, 1e-4);
}

TEST(CliFid, NumpyReadsOurReference) {
  if (std::system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0)
    GTEST_SKIP() << "python3-numpy absent";
  const std::string script = "import numpy as np; d = np.load('" + ref_file() +
                             "'); assert d['mu'].shape == (2048,) and d['sigma'].shape == (2048, 2048); "
                             "assert d['mu'].dtype == np.float64; assert int(d['count']) == 12";
  EXPECT_EQ(std::system(("/usr/bin/python3 -c \"" + script + "\"").c_str()), 0);
}

TEST(CliFid, BadInputIsOneLine) {
  const std::string d = scratch_dir();
  // No detector: names the file to get and where.
  CliResult none =
      run_cli("fid --images " + test::quoted(image_dir()) + " --ref " + test::quoted(ref_file()));
  EXPECT_ONE_LINE_ERROR(none);
  EXPECT_NE(none.output.find("inception-2015-12-05.pt"), std::string::npos) << none.output;
  // A reference of another feature size.
  NamedTensors small = {{"mu", at::zeros({16}, at::kDouble)}, {"sigma", at::eye(16, at::kDouble)}};
  write_npz(d + "/small.npz", small);
  CliResult dims = run_cli("fid --images " + test::quoted(image_dir()) + " --ref " +
                           test::quoted(d + "/small.npz") + " --detector " + test::quoted(kDetector));
  EXPECT_ONE_LINE_ERROR(dims);
  EXPECT_NE(dims.output.find("16 features"), std::string::npos) << dims.output;
  // A folder with a non-image file; mixed sizes; a single image.
  fs::create_directories(d + "/mixed");
  fs::copy_file(image_dir() + "/000000.png", d + "/mixed/a.png");
  std::ofstream(d + "/mixed/notes.txt") << "hello";
  CliResult stray = run_cli("fid --images " + test::quoted(d + "/mixed") + " --ref " +
                            test::quoted(ref_file()) + " --detector " + test::quoted(kDetector));
  EXPECT_ONE_LINE_ERROR(stray);
  EXPECT_NE(stray.output.find("notes.txt"), std::string::npos) << stray.output;
  fs::remove(d + "/mixed/notes.txt");
  CliResult one = run_cli("fid --images " + test::quoted(d + "/mixed") + " --ref " +
                          test::quoted(ref_file()) + " --detector " + test::quoted(kDetector));
  EXPECT_ONE_LINE_ERROR(one);
  EXPECT_NE(one.output.find("at least two images"), std::string::npos) << one.output;
  // The message names the folder, not the detector (found by tests/hostile/sweep.py); ref as fid.
  EXPECT_NE(one.output.find(d + "/mixed: need at least two images"), std::string::npos) << one.output;
  CliResult ref_one = run_cli("ref --data " + test::quoted(d + "/mixed") + " --out " +
                              test::quoted(d + "/one.npz") + " --detector " + test::quoted(kDetector));
  EXPECT_ONE_LINE_ERROR(ref_one);
  EXPECT_NE(ref_one.output.find(d + "/mixed: need at least two images to estimate a covariance, got 1"),
            std::string::npos)
      << ref_one.output;
  EXPECT_FALSE(fs::exists(d + "/one.npz"));
  fs::copy_file(image_dir() + "/000001.png", d + "/mixed/b.png");
  // A grid of four images is 64x64 among 32x32 images.
  CliResult grid = run_cli("generate --threads 1 --net " + test::quoted(kTeacher) +
                           " --steps 2 --seeds 0-3 --grid " + test::quoted(d + "/mixed/c.png"));
  ASSERT_EQ(grid.code, 0) << grid.output;
  CliResult sizes = run_cli("fid --images " + test::quoted(d + "/mixed") + " --ref " +
                            test::quoted(ref_file()) + " --detector " + test::quoted(kDetector));
  EXPECT_ONE_LINE_ERROR(sizes);
  EXPECT_NE(sizes.output.find("share one size"), std::string::npos) << sizes.output;
  // A detector that is not TorchScript.
  std::ofstream(d + "/fake.pt") << "not a model";
  CliResult fake = run_cli("fid --images " + test::quoted(image_dir()) + " --ref " +
                           test::quoted(ref_file()) + " --detector " + test::quoted(d + "/fake.pt"));
  EXPECT_ONE_LINE_ERROR(fake);
  EXPECT_NE(fake.output.find("fake.pt"), std::string::npos) << fake.output;
  // Two sources at once; fewer than two seeds.
  EXPECT_ONE_LINE_ERROR(run_cli("fid --net " + test::quoted(kTeacher) + " --images " +
                                test::quoted(image_dir()) + " --ref " + test::quoted(ref_file()) +
                                " --detector " + test::quoted(kDetector)));
  EXPECT_ONE_LINE_ERROR(run_cli("fid --net " + test::quoted(kTeacher) + " --seeds 3 --ref " +
                                test::quoted(ref_file()) + " --detector " + test::quoted(kDetector)));
}

}  // namespace
}  // namespace pidistill::test
