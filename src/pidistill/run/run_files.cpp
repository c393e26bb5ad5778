#include "pidistill/run/run_files.h"

#include "pidistill/util/files.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

namespace pidistill {

namespace fs = std::filesystem;

RunFiles RunFiles::create(const std::string& outdir, const std::string& desc, const std::string& options_json,
                          const RunProcesses& processes, int64_t batch) {
  RunFiles files;
  files.writes_ = processes.writes_outputs();
  if (!files.writes_) return files;
  // Why ordered: the trainer's key order stays as it wrote it, the two keys come last.
  auto options = nlohmann::ordered_json::parse(options_json);
  options["world_size"] = processes.world_size;
  options["batch_per_rank"] = processes.slice(batch).size();
  files.dir_ = make_run_dir(outdir, desc);
  write_file_atomic(files.path("training_options.json"), options.dump(2) + "\n");
  return files;
}

RunFiles RunFiles::resume_in(const std::string& checkpoint, int64_t step, bool writes_outputs,
                             const std::string& key) {
  RunFiles files;
  files.writes_ = writes_outputs;
  files.dir_ = fs::path(checkpoint).parent_path().string();
  if (files.dir_.empty()) files.dir_ = ".";
  files.last_checkpoint_ = checkpoint;
  if (writes_outputs) {
    drop_lines_after_step(files.path("stats.jsonl"), step, key);
    remove_stale_temporaries(files.dir_);  // a killed write's ".NAME.tmp-XXXXXX"
  }
  return files;
}

void RunFiles::log(const std::string& json_line) const {
  if (writes_) append_line(path("stats.jsonl"), json_line);
}

void RunFiles::checkpoint(const std::string& name, const std::function<void(const std::string&)>& save) {
  if (!writes_) return;
  const std::string p = path(name);
  save(p);
  if (keep_newest_only && !last_checkpoint_.empty() && last_checkpoint_ != p) fs::remove(last_checkpoint_);
  last_checkpoint_ = p;
}

std::string numbered_name(const std::string& prefix, int64_t number, const std::string& ext) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%06lld", static_cast<long long>(number));
  return prefix + digits + ext;
}

}  // namespace pidistill
