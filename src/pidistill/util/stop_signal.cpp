// Stop requests from SIGINT/SIGTERM: the handler only sets an atomic flag (async-signal-safe); a second SIGINT
// means the user no longer wants to wait for the checkpoint, so it ends the process at once with 130 (128 + SIGINT).
#include "pidistill/util/stop_signal.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

namespace pidistill {

namespace {

std::atomic<bool> g_stop{false};  // process state by nature: signals are delivered to the process
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

void on_signal(int sig) {
  if (sig == SIGINT && g_stop.load()) {
    const char msg[] = "\ninterrupted twice: exiting now without a checkpoint\n";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    _exit(130);
  }
  g_stop.store(true);
  const char msg[] = "\nstop requested: finishing this step and saving a checkpoint (Ctrl-C again to quit now)\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
}

}  // namespace

void install_stop_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // keep blocking reads/writes going; the loop polls the flag
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
  });
}

bool stop_requested() { return g_stop.load(); }

void request_stop() { g_stop.store(true); }

}  // namespace pidistill
