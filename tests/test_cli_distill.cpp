// `pidistill distill` through the binary: paper defaults, one-line errors, an interrupted-then-resumed run
// that equals the uninterrupted one bit for bit (also with the grid schedule and loss-driven index draws),
// per-noise-level stats and FD lines (tiny golden teacher, a few steps, float32 on CPU).
#include "pidistill/io/safetensors.h"
#include "pidistill/util/checkpoint.h"
#include "pidistill/util/files.h"
#include "pidistill/util/seeds.h"
#include "test_cli_util.h"
#include "test_common.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace pidistill::test {
namespace {

namespace fs = std::filesystem;

const std::string kTeacher = golden("ddpmpp_uncond_weights.safetensors");

std::string tiny_run(const std::string& outdir) {
  return "distill --teacher " + quoted(kTeacher) +
         " --loss l2 --batch 4 --batch-gpu 2 --seed 5 --log-every 1" +
         " --snap-every 2 --grid-every 4 --grid-seeds 0-3 --threads 1 --quiet --outdir " + quoted(outdir);
}

std::string only_run_dir(const std::string& outdir) {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(outdir)) dirs.push_back(e.path());
  EXPECT_EQ(dirs.size(), 1u) << outdir;
  return dirs.empty() ? "" : dirs[0].string();
}

int count_lines(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) ++n;
  return n;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// Every tensor of two checkpoints is equal; returns how many were compared.
int expect_same_checkpoints(const std::string& a, const std::string& b) {
  const TensorFile ca = load_checkpoint(a, "pid_distill"), cb = load_checkpoint(b, "pid_distill");
  EXPECT_EQ(ca.tensors.size(), cb.tensors.size());
  int compared = 0;
  for (size_t i = 0; i < std::min(ca.tensors.size(), cb.tensors.size()); ++i) {
    EXPECT_EQ(ca.tensors[i].first, cb.tensors[i].first);
    EXPECT_TRUE(ca.tensors[i].second.equal(cb.tensors[i].second)) << ca.tensors[i].first;
    ++compared;
  }
  return compared;
}

TEST(CliDistill, DryRunShowsPaperDefaults) {
  const auto r = run_cli("distill --teacher " + quoted(kTeacher) + " --dry-run");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* expected : {"\"N\": 250", "\"lr\": 0.0002", "\"batch\": 512", "\"loss\": \"lpips\"",
                               "0.99995", "\"last_index_backward\": true"})
    EXPECT_NE(r.output.find(expected), std::string::npos) << expected << "\n" << r.output;
}

TEST(CliDistill, BadInputIsOneLineError) {
  auto r = run_cli("distill --teacher " + quoted(kTeacher) + " --N 1 --dry-run");
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.output.find("--N"), std::string::npos) << r.output;
  r = run_cli("distill --teacher " + quoted(kTeacher) + " --loss lpips --steps 1 --outdir " +
              quoted(scratch_dir() + "/lpips"));
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.output.find("lpips"), std::string::npos) << r.output;
  r = run_cli("distill --teacher " + quoted(scratch_dir() + "/missing.safetensors") + " --steps 1 --outdir " +
              quoted(scratch_dir() + "/missing"));
  EXPECT_ONE_LINE_ERROR(r);
  r = run_cli("distill --teacher " + quoted(kTeacher) + " --batch 4 --batch-gpu 3 --dry-run");
  EXPECT_ONE_LINE_ERROR(r);
}

TEST(CliDistill, ResumedRunEqualsUninterrupted) {
  const std::string a = scratch_dir() + "/uninterrupted", b = scratch_dir() + "/interrupted";
  auto r = run_cli(tiny_run(a) + " --steps 4");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_cli(tiny_run(b) + " --steps 2");  // "interrupted" after 2 steps: its state is checkpointed
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string run_b = only_run_dir(b);
  r = run_cli("distill --resume " + quoted(run_b + "/training-state-000002.safetensors") +
              " --steps 4 --threads 1 --quiet");
  ASSERT_EQ(r.code, 0) << r.output;

  const std::string run_a = only_run_dir(a);
  const TensorFile ca = load_checkpoint(run_a + "/training-state-000004.safetensors", "pid_distill");
  const TensorFile cb = load_checkpoint(run_b + "/training-state-000004.safetensors", "pid_distill");
  ASSERT_EQ(ca.tensors.size(), cb.tensors.size());
  int compared = 0;
  for (size_t i = 0; i < ca.tensors.size(); ++i) {
    ASSERT_EQ(ca.tensors[i].first, cb.tensors[i].first);
    EXPECT_TRUE(ca.tensors[i].second.equal(cb.tensors[i].second)) << ca.tensors[i].first;
    ++compared;
  }
  std::cout << "[ resume ] " << compared << " checkpoint tensors identical (student, EMAs, RAdam, RNG)\n";
  // Training moved the student away from the teacher (the test would pass vacuously otherwise).
  const TensorFile teacher = read_safetensors(kTeacher);
  EXPECT_FALSE(ca.get("student.enc.16x16_conv.weight").equal(teacher.get("model.enc.16x16_conv.weight")));

  // The run directory holds what a user looks at.
  for (const char* name :
       {"training_options.json", "stats.jsonl", "student-final.safetensors", "grid-000004.png"})
    EXPECT_TRUE(fs::exists(run_a + "/" + name)) << name;
  EXPECT_FALSE(fs::exists(run_a + "/training-state-000002.safetensors"));  // only the newest is kept
  EXPECT_EQ(count_lines(run_a + "/stats.jsonl"), 4);
  EXPECT_EQ(count_lines(run_b + "/stats.jsonl"), 4);
  const TensorFile student = read_safetensors(run_a + "/student-final.safetensors");
  EXPECT_EQ(student.meta("pid_student"), "1");
  EXPECT_EQ(student.meta("T"), "80");
  EXPECT_TRUE(student.get("model.enc.16x16_conv.weight").equal(ca.get("student.enc.16x16_conv.weight")));
  const TensorFile student_b = read_safetensors(run_b + "/student-final.safetensors");
  EXPECT_TRUE(
      student.get("model.dec.16x16_aux_conv.weight").equal(student_b.get("model.dec.16x16_aux_conv.weight")));

  // One-call generation from the exported student: the student at t = sigma_min, clamped, EDM's seed latents.
  const std::string gen_out = scratch_dir() + "/student_gen.safetensors";
  r = run_cli("generate --net " + quoted(run_a + "/student-final.safetensors") + " --seeds 0-3 --out " +
              quoted(gen_out));
  ASSERT_EQ(r.code, 0) << r.output;
  const at::Tensor x_final = read_safetensors(gen_out).get("x_final");  // [4, 3, 16, 16]
  const at::Tensor z = latents_for_seeds({0, 1, 2, 3}, 3, 16);
  const std::string den_in = scratch_dir() + "/student_den_in.safetensors",
                    den_out = scratch_dir() + "/student_den_out.safetensors";
  write_safetensors(den_in, {{"z", z}, {"t", at::full({4}, 0.002)}});
  r = run_cli("denoise --student --net " + quoted(run_a + "/student-final.safetensors") + " --in " +
              quoted(den_in) + " --out " + quoted(den_out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(x_final.to(at::kFloat).equal(read_safetensors(den_out).get("x_theta").clamp(-1, 1)));
  EXPECT_LE(x_final.abs().max().item<double>(), 1.0);
  // --t samples the trajectory elsewhere: at t = T it is exactly T z (clamped).
  r = run_cli("generate --net " + quoted(run_a + "/student-final.safetensors") +
              " --seeds 0-3 --t 80 --out " + quoted(gen_out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(read_safetensors(gen_out).get("x_final").to(at::kFloat).equal((z * 80).clamp(-1, 1)));

  // Resuming with a changed training option is refused.
  r = run_cli("distill --resume " + quoted(run_a + "/training-state-000004.safetensors") +
              " --lr 1e-3 --steps 5");
  EXPECT_ONE_LINE_ERROR(r);
}

TEST(CliDistill, ResumedRunEqualsUninterruptedWithScheduleAndLossSampling) {
  // Grid 3, 5, 9, then --N 10 from step 3; the interruption falls between refinements, and the loss-driven
  // draws after it depend on the per-bin loss averages restored from the checkpoint.
  const std::string extra = " --N 10 --N-start 3 --N-refine-every 1 --index-sampling loss";
  const std::string a = scratch_dir() + "/sched_uninterrupted", b = scratch_dir() + "/sched_interrupted";
  auto r = run_cli(tiny_run(a) + extra + " --steps 4");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_cli(tiny_run(b) + extra + " --steps 2");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string run_a = only_run_dir(a), run_b = only_run_dir(b);
  r = run_cli("distill --resume " + quoted(run_b + "/training-state-000002.safetensors") +
              " --steps 4 --threads 1 --quiet");
  ASSERT_EQ(r.code, 0) << r.output;
  const int compared = expect_same_checkpoints(run_a + "/training-state-000004.safetensors",
                                               run_b + "/training-state-000004.safetensors");
  std::cout << "[ resume ] " << compared
            << " checkpoint tensors identical with --N-start and loss sampling\n";
  const TensorFile ca = load_checkpoint(run_a + "/training-state-000004.safetensors", "pid_distill");
  const at::Tensor loss_ema = ca.get("index_sampling.loss_ema");  // [8], moved away from its initial 1
  EXPECT_FALSE(loss_ema.equal(at::ones({8}, at::kDouble))) << loss_ema;

  // stats.jsonl: the grid size of each step and the per-bin losses and counts of its 4 samples.
  const auto lines = read_jsonl(run_a + "/stats.jsonl");
  ASSERT_EQ(lines.size(), 4u);
  const std::vector<int64_t> expected_N = {3, 5, 9, 10};
  for (size_t k = 0; k < lines.size(); ++k) {
    const auto& line = lines[k];
    EXPECT_EQ(line.at("N").get<int64_t>(), expected_N[k]) << line.dump();
    ASSERT_EQ(line.at("loss_bins").size(), 8u);
    ASSERT_EQ(line.at("bin_counts").size(), 8u);
    int64_t total = 0;
    for (int bin = 0; bin < 8; ++bin) {
      const int64_t count = line.at("bin_counts")[bin].get<int64_t>();
      total += count;
      EXPECT_EQ(line.at("loss_bins")[bin].is_null(), count == 0) << line.dump();
      if (count > 0) EXPECT_TRUE(std::isfinite(line.at("loss_bins")[bin].get<double>())) << line.dump();
    }
    EXPECT_EQ(total, 4) << line.dump();
  }
  // N = 3 uses bins floor(8 i / 3) = 0, 2, 5 only.
  for (int bin : {1, 3, 4, 6, 7}) EXPECT_EQ(lines[0].at("bin_counts")[bin].get<int64_t>(), 0) << lines[0];

  // The schedule and the sampling are training options: changing them on resume is refused.
  r = run_cli("distill --resume " + quoted(run_a + "/training-state-000004.safetensors") +
              " --index-sampling uniform --steps 5");
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.output.find("index_sampling"), std::string::npos) << r.output;
  r = run_cli("distill --resume " + quoted(run_a + "/training-state-000004.safetensors") +
              " --N-start 5 --steps 5");
  EXPECT_ONE_LINE_ERROR(r);
  // Bad values are one-line errors.
  for (const char* bad :
       {" --N-start 1 --N-refine-every 5", " --N-start 300 --N-refine-every 5", " --N-start 8",
        " --N-refine-every 5", " --index-sampling bogus", " --fd-every 5", " --fd-every -1"}) {
    r = run_cli("distill --teacher " + quoted(kTeacher) + bad + " --dry-run");
    EXPECT_ONE_LINE_ERROR(r);
  }
}

TEST(CliDistill, FdLinesDuringTraining) {
  // A reference of 8 teacher PNGs (Heun, 2 steps) measured with the TorchScript stand-in of Inception.
  const std::string detector = golden("fid/tiny_detector.pt");
  const std::string pngs = scratch_dir() + "/fd_pngs", ref = scratch_dir() + "/fd_ref.npz";
  auto r = run_cli("generate --threads 1 --net " + quoted(kTeacher) + " --steps 2 --seeds 0-7 --outdir " +
                   quoted(pngs));
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_cli("ref --threads 1 --data " + quoted(pngs) + " --out " + quoted(ref) + " --detector " +
              quoted(detector));
  ASSERT_EQ(r.code, 0) << r.output;

  const std::string out = scratch_dir() + "/fd_run";
  const std::string fd = " --fd-ref " + quoted(ref) + " --fd-detector " + quoted(detector) + " --fd-images 6";
  r = run_cli(tiny_run(out) + fd + " --fd-every 2 --steps 3");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string run_dir = only_run_dir(out);
  std::vector<nlohmann::json> fd_lines;
  for (const auto& line : read_jsonl(run_dir + "/stats.jsonl"))
    if (line.contains("fd")) fd_lines.push_back(line);
  ASSERT_EQ(fd_lines.size(), 2u);  // step 2 (every 2) and step 3 (the end)
  for (const auto& line : fd_lines) {
    std::cout << line.dump() << "\n";
    EXPECT_TRUE(std::isfinite(line.at("fd").get<double>())) << line.dump();
    EXPECT_GE(line.at("fd").get<double>(), 0) << line.dump();
    EXPECT_EQ(line.at("fd_images").get<int64_t>(), 6);
    EXPECT_EQ(line.at("fd_metric").get<std::string>(), "FID");
    EXPECT_LE(line.at("train_minutes").get<double>(), line.at("minutes").get<double>());
  }
  EXPECT_EQ(fd_lines[0].at("step").get<int64_t>(), 2);
  EXPECT_EQ(fd_lines[1].at("step").get<int64_t>(), 3);
  EXPECT_DOUBLE_EQ(fd_lines[1].at("kimg").get<double>(), 0.012);  // 3 steps of batch 4
  // Measurement time is wall time: the second line's train_minutes leaves out the first measurement.
  EXPECT_LT(fd_lines[1].at("train_minutes").get<double>(), fd_lines[1].at("minutes").get<double>());

  // --fd-* may change on resume (like the logging options): turned off here, so no new fd line.
  r = run_cli("distill --resume " + quoted(run_dir + "/training-state-000003.safetensors") +
              " --fd-every 0 --steps 4 --threads 1 --quiet");
  ASSERT_EQ(r.code, 0) << r.output;
  int fd_count = 0;
  for (const auto& line : read_jsonl(run_dir + "/stats.jsonl")) fd_count += line.contains("fd");
  EXPECT_EQ(fd_count, 2);
  // A missing reference fails before training.
  r = run_cli(tiny_run(scratch_dir() + "/fd_missing") + " --fd-every 2 --fd-detector " + quoted(detector) +
              " --fd-ref " + quoted(scratch_dir() + "/missing.npz") + " --steps 2");
  EXPECT_ONE_LINE_ERROR(r);
}

TEST(CliDistill, DenoiseStudentAtInitialisationMatchesGolden) {
  // A teacher file evaluated with --student is the student at initialisation (F = the teacher's network),
  // which is what the golden pid_student_io files hold.
  for (bool f64 : {true, false}) {
    const TensorFile io =
        load_golden(std::string("pid_student_io_") + (f64 ? "f64" : "f32") + ".safetensors");
    const std::string stem = scratch_dir() + "/student_io" + (f64 ? "64" : "32");
    write_safetensors(stem + "_in.safetensors", {{"z", io.get("z")}, {"t", io.get("t")}});
    const auto r =
        run_cli("denoise --student --net " + quoted(kTeacher) + " --in " + quoted(stem + "_in.safetensors") +
                " --out " + quoted(stem + "_out.safetensors") + (f64 ? " --f64" : ""));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_CLOSE(read_safetensors(stem + "_out.safetensors").get("x_theta"), io.get("x_theta"),
                 f64 ? 1e-12 : 1e-5);
  }
  // t outside [sigma_min, T] is refused.
  const std::string bad = scratch_dir() + "/student_bad_in.safetensors";
  write_safetensors(bad, {{"z", at::zeros({1, 3, 16, 16})}, {"t", at::full({1}, 100.0)}});
  const auto r = run_cli("denoise --student --net " + quoted(kTeacher) + " --in " + quoted(bad) + " --out " +
                         quoted(scratch_dir() + "/student_bad_out.safetensors"));
  EXPECT_ONE_LINE_ERROR(r);
}

}  // namespace
}  // namespace pidistill::test

namespace pidistill::test {
namespace {

TEST(CliDistill, ResumeHygiene) {
  // A copy of the teacher under a relative path, in a folder of its own.
  const std::string home = scratch_dir() + "/hygiene";
  fs::create_directories(home + "/work");
  fs::copy_file(kTeacher, home + "/work/teacher.safetensors");
  const std::string out = home + "/runs";
  // Started from home/work with a relative teacher path (run_cli runs in the test's own folder).
  const std::string cmd =
      "cd " + test::quoted(home + "/work") + " && '" + std::string(PIDISTILL_CLI) +
      "' distill --teacher teacher.safetensors --loss l2 --batch 2 --seed 1 --log-every 1 "
      "--snap-every 1 --grid-every 0 --grid-seeds 0-1 --threads 1 --quiet --steps 3 --outdir " +
      test::quoted(out) + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string run = only_run_dir(out);
  ASSERT_TRUE(fs::exists(run + "/training-state-000003.safetensors"));
  for (const auto& e : fs::directory_iterator(run))  // --grid-every 0: no sample grid, not even at the end
    EXPECT_NE(e.path().filename().string().rfind("grid-", 0), 0u) << e.path();
  CliResult r;
  // A log line for a step after the checkpoint, as an interruption between log and checkpoint leaves it.
  append_line(run + "/stats.jsonl", R"({"step": 4, "loss": 1})");
  // Resumed from another folder: the relative teacher path is found through the checkpoint.
  r = run_cli("distill --resume " + test::quoted(run + "/training-state-000003.safetensors") +
              " --steps 5 --threads 1 --quiet");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_FALSE(fs::exists(run + "/training-state-000003.safetensors")) << "the resumed-from checkpoint stays";
  EXPECT_TRUE(fs::exists(run + "/training-state-000005.safetensors"));
  std::ifstream in(run + "/stats.jsonl");
  std::vector<int64_t> steps;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss_bins")) steps.push_back(j.at("step").get<int64_t>());
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5})) << "no step logged twice";
  // Only the teacher file's notes changed: the same network, so the run resumes (and takes a moved teacher).
  {
    TensorFile t = read_safetensors(home + "/work/teacher.safetensors");
    t.metadata["note"] = "edited after the run started";
    write_safetensors(home + "/work/moved-teacher.safetensors", t.tensors, t.metadata);
  }
  r = run_cli("distill --resume " + test::quoted(run + "/training-state-000005.safetensors") + " --teacher " +
              test::quoted(home + "/work/moved-teacher.safetensors") + " --steps 6 --threads 1 --quiet");
  ASSERT_EQ(r.code, 0) << r.output;
  // The teacher's weights changed under the run: resuming is refused, naming the file.
  {
    TensorFile t = read_safetensors(home + "/work/moved-teacher.safetensors");
    t.tensors[0].second = t.tensors[0].second + 1;
    write_safetensors(home + "/work/moved-teacher.safetensors", t.tensors, t.metadata);
  }
  r = run_cli("distill --resume " + test::quoted(run + "/training-state-000006.safetensors") +
              " --steps 7 --threads 1 --quiet");
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.output.find("moved-teacher.safetensors"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("teacher network changed"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace pidistill::test
