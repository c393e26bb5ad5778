// The files of a training run: its numbered directory with training_options.json, the stats.jsonl log and the
// checkpoints. Only a process that writes outputs (rank 0) touches the disk; on the others every call is a
// no-op.
#pragma once
#include "pidistill/run/processes.h"

#include <cstdint>
#include <functional>
#include <string>

namespace pidistill {

class RunFiles {
 public:
  RunFiles() = default;

  // A new run: OUTDIR/NNNNN-DESC (EDM's numbering) holding `options_json` (a JSON object) as
  // training_options.json, with "world_size" and "batch_per_rank" (images per process and step) added.
  // Nothing is written (and dir() is empty) unless processes.writes_outputs().
  static RunFiles create(const std::string& outdir, const std::string& desc, const std::string& options_json,
                         const RunProcesses& processes, int64_t batch);
  // A run resumed in place from `checkpoint` (taken after `step`): the checkpoint's own directory.
  // stats.jsonl lines of later steps, written before an interruption, are dropped: those steps are trained
  // again.
  // `key`: the stats lines' counter ("step", EDM's "tick"). Stale temporaries of a killed write are removed.
  static RunFiles resume_in(const std::string& checkpoint, int64_t step, bool writes_outputs,
                            const std::string& key = "step");

  const std::string& dir() const { return dir_; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  bool writes_outputs() const { return writes_; }

  // One stats.jsonl line (a JSON object), flushed at once.
  void log(const std::string& json_line) const;

  // Writes a checkpoint through `save(path)`. With keep_newest_only, the previous one (the resumed-from
  // checkpoint included) is removed once the new one is complete: each holds the weights, every EMA and the
  // optimiser moments.
  void checkpoint(const std::string& name, const std::function<void(const std::string& path)>& save);
  const std::string& last_checkpoint() const { return last_checkpoint_; }
  bool keep_newest_only = false;

 private:
  std::string dir_, last_checkpoint_;
  bool writes_ = true;
};

// "PREFIX000123EXT": the zero-padded counter of checkpoint and grid names.
std::string numbered_name(const std::string& prefix, int64_t number, const std::string& ext);

}  // namespace pidistill
