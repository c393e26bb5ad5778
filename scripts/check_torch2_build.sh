#!/usr/bin/env bash
# Builds the library and the CLI against LibTorch 2.x from PyPI's torch wheel (CUDA-enabled), to catch API
# differences from Debian's LibTorch 1.13 before the GPU machine does. Tests are left out (Debian's GTest).
#   scripts/check_torch2_build.sh [--head]   # --head: build the committed tree (git archive HEAD)
# venv: $TORCH2_VENV (default /work/venv-torch2); build folder: $TORCH2_BUILD (default build-torch2, git-ignored).
# The wheel with its nvidia-* dependencies is a ~5 GB download the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${TORCH2_VENV:-/work/venv-torch2}
build=${TORCH2_BUILD:-build-torch2}

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --progress-bar off torch
fi
prefix=$("$venv/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)
# Why the torch folder too: TorchConfig's find_library(torch) would otherwise find Debian's libtorch.so in
# /usr/lib first and mix 1.13 binaries with 2.x headers; CMAKE_PREFIX_PATH/lib is searched before system dirs.
torch_root=$(dirname "$(dirname "$prefix")")
"$venv/bin/python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
      "cxx11_abi", torch._C._GLIBCXX_USE_CXX11_ABI)' 2>/dev/null

src=.
if [ "${1:-}" = "--head" ]; then  # the committed tree only, without uncommitted work in progress
  src="$build/src-head"
  rm -rf "$src" && mkdir -p "$src" && git archive HEAD | tar -x -C "$src"
fi
# Why -rpath-link: the link line's rpath names /usr/local/cuda/lib, whose older libnccl lacks symbols that
# libtorch_cuda.so needs; the wheel's own nvidia/*/lib folders must be searched first.
nvidia_libs=$(ls -d "$torch_root"/../nvidia/*/lib 2>/dev/null | paste -sd: -)
# The wheel's Caffe2 config needs a CUDA toolkit (nvcc); it finds /usr/local/cuda or nvcc on PATH.
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPIDISTILL_BUILD_TESTS=OFF \
  -DCMAKE_PREFIX_PATH="$prefix;$torch_root" ${nvidia_libs:+"-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$nvidia_libs"}
cmake --build "$build" -j"${JOBS:-2}" --target pidistill
"$build/pidistill" --version
echo "torch2 build: OK"
