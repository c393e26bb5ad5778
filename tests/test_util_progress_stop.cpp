// Progress output (captured stderr, which is not a terminal here) and the stop flag set by signals.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "pidistill/util/progress.h"
#include "pidistill/util/stop_signal.h"

using namespace pidistill;

TEST(Progress, PlainFinalLineHasCountsAndRate) {
  testing::internal::CaptureStderr();
  {
    Progress p("sampling", 10, "img");
    p.update(3);
    p.update(10, "loss 0.5");
  }
  std::string out = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("sampling"), std::string::npos) << out;
  EXPECT_NE(out.find("10/10"), std::string::npos) << out;
  EXPECT_NE(out.find("img/s"), std::string::npos) << out;
  EXPECT_NE(out.find("loss 0.5"), std::string::npos) << out;
  EXPECT_EQ(out.find("3/10"), std::string::npos) << "plain output must not print every update: " << out;
}

TEST(Progress, FinishReportsLastCountOnce) {
  testing::internal::CaptureStderr();
  {
    Progress p("train", 100, "step");
    p.update(40);
    p.finish("stopped");
  }  // the destructor must not print a second line
  std::string out = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("40/100"), std::string::npos) << out;
  EXPECT_NE(out.find("stopped"), std::string::npos) << out;
  EXPECT_EQ(out.find("train", out.find("train") + 1), std::string::npos) << out;
}

TEST(Progress, DisabledPrintsNothing) {
  testing::internal::CaptureStderr();
  {
    Progress p("rank1", 10, "img", /*enabled=*/false);
    p.update(10);
    p.finish("x");
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(StopSignal, RequestStopSetsTheFlag) {
  EXPECT_EXIT(
      {
        if (stop_requested()) std::_Exit(2);
        request_stop();
        std::_Exit(stop_requested() ? 0 : 3);
      },
      testing::ExitedWithCode(0), "");
}

TEST(StopSignal, SigtermSetsTheFlag) {
  EXPECT_EXIT(
      {
        install_stop_handler();
        std::raise(SIGTERM);
        std::_Exit(stop_requested() ? 0 : 3);
      },
      testing::ExitedWithCode(0), "stop requested");
}

TEST(StopSignal, SecondSigintExitsWith130) {
  EXPECT_EXIT(
      {
        install_stop_handler();
        install_stop_handler();  // idempotent
        std::raise(SIGINT);
        if (!stop_requested()) std::_Exit(3);
        std::raise(SIGINT);
        std::_Exit(4);  // not reached
      },
      testing::ExitedWithCode(130), "interrupted twice");
}

TEST(Progress, NoZeroRateAndTheFinalLineOnce) {
  testing::internal::CaptureStderr();
  {
    Progress p("generate", 4, "img");
    p.update(0);  // before any work: no "0 img/s"
    p.update(4);  // the total: printed once, by this update
    p.finish();   // nothing new: no second line
  }
  std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(out.find(" 0 img/s"), std::string::npos) << out;
  EXPECT_NE(out.find("4/4"), std::string::npos) << out;
  EXPECT_EQ(out.find("4/4", out.find("4/4") + 1), std::string::npos) << "final line twice: " << out;
}

TEST(Progress, ResumedRunRatesOnlyItsOwnWorkAndEtaHonoursTheTimeLimit) {
  testing::internal::CaptureStderr();
  {
    Progress p("distill", 1000000, "step", true, /*start_done=*/500);
    p.set_time_limit(90);  // --minutes 1.5 ends this run long before step 1,000,000
    p.update(510);
    p.finish();
  }
  std::string out = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("510/1000000"), std::string::npos) << out;
  // ETA by the time limit: at most 01:30, not the hundreds of hours 999,490 steps would take.
  auto eta = out.find("ETA ");
  ASSERT_NE(eta, std::string::npos) << out;
  EXPECT_LE(out.substr(eta + 4, 5), std::string("01:30")) << out;
  EXPECT_EQ(out.substr(eta + 4, 5).find(':'), 2u) << out;
}

// --minutes with a huge --steps (the demo: --steps 1000000 --minutes 10): the percentage follows the budget.
TEST(Progress, PercentageFollowsTheTimeLimitWhenItEndsFirst) {
  testing::internal::CaptureStderr();
  {
    Progress p("distill", 1000000, "step");
    p.set_time_limit(0.4);
    std::this_thread::sleep_for(std::chrono::milliseconds(220));
    p.update(20);
    p.finish();
  }
  std::string out = testing::internal::GetCapturedStderr();
  auto pct = out.find('%');
  ASSERT_NE(pct, std::string::npos) << out;
  const int percent = std::stoi(out.substr(pct - 3, 3));
  EXPECT_GE(percent, 50) << "0.22 s of a 0.4 s budget: " << out;
  EXPECT_LE(percent, 100) << out;
  EXPECT_NE(out.find("20/1000000"), std::string::npos) << out;
}
