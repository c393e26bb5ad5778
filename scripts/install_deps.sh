#!/usr/bin/env bash
# Checks the Debian 12 packages pidistill needs. Missing ones are installed when we are root (CI); otherwise
# the one apt-get line to run is printed and we stop.
set -euo pipefail
packages=(
  g++ cmake make zlib1g-dev
  libssl-dev             # SHA-256 (OpenSSL libcrypto) of teacher files, checked on resume
  libtorch-dev           # LibTorch 1.13 (CPU), CMake config included
  libopenblas0-pthread   # makes LibTorch's BLAS calls ~15x faster than the reference BLAS it uses by default
  libdnnl-dev            # oneDNN's API: its Winograd F(4x4, 3x3) convolution (--conv winograd, AVX-512)
  libtcmalloc-minimal4   # tcmalloc: ~1.5-2 GB less resident memory than glibc malloc on the CIFAR-10 network
  libgloo-dev            # the Gloo headers Debian's LibTorch lacks, for multi-process training
  nlohmann-json3-dev libcli11-dev libstb-dev libgtest-dev
  python3-numpy          # tests: npz files we write load in numpy
  python3-matplotlib     # scripts/plot_*.py: the PNG plots of docs/RESULTS.md
  python3-torch          # tests: exported .pt files load in Python's torch.load (skipped without it);
                         # also the PyTorch reference timings of the performance work
  dataset-fashion-mnist  # a small real data set for the demo and the data tests
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "run:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
