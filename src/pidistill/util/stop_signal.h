// Ctrl-C and SIGTERM ask a training loop to stop: it saves a checkpoint at the next step and exits.
#pragma once

namespace pidistill {

void install_stop_handler();  // idempotent; a second Ctrl-C exits at once
bool stop_requested();
void request_stop();  // for tests: behaves as if Ctrl-C had been pressed

}  // namespace pidistill
