// `distill --fd-every`: the Fréchet distance of one-call images of the student being trained, against a
// reference made by `pidistill ref`, so stats.jsonl shows image quality against steps and wall time.
#pragma once
#include "pidistill/metrics/evaluate.h"
#include "pidistill/nets/net_config.h"
#include "pidistill/pid/student.h"

#include <cstdint>
#include <memory>
#include <string>

namespace pidistill {

struct FdMonitorOptions {
  std::string ref;               // Reference statistics (.npz from pidistill ref or EDM's fid.py).
  std::string detector;          // Feature network file (Inception TorchScript or a pidistill classifier).
  int64_t images = 1000;         // Images per measurement (>= 2: a covariance needs two).
  int64_t first_seed = 1000000;  // Seeds first_seed .. first_seed+images-1, apart from the --grid-seeds.
  int64_t batch = 250;           // Images per generation and detector call.
};

class FdMonitor {
 public:
  // Loads the detector and the reference once (Error naming the file, before any training is done).
  explicit FdMonitor(const FdMonitorOptions& options);

  // FD of one-call images of `student` (in eval mode; no gradient) for the fixed seeds, with EDM's seed
  // convention for latents and labels, quantised to uint8 as the PNG writer does.
  double measure(const Student& student, const NetConfig& config);

  std::string metric() const { return detector_->name(); }  // "FID" for Inception, "FD-FMNIST", ...

 private:
  FdMonitorOptions options_;
  std::unique_ptr<FeatureDetector> detector_;
  Reference reference_;
};

}  // namespace pidistill
