#!/usr/bin/env bash
# The demo `make demo` runs: the most complete path that works today. For now: read the tiny EDM reference
# network of ../shared/golden as the official code saved it (torch.save state dict), convert it into a
# self-describing safetensors file, inspect it, and denoise the reference inputs with it.
# (To be replaced by the distillation demo: teacher -> one-step student -> images.)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
pidistill="$build/pidistill"
golden=../shared/golden
out=out/demo
mkdir -p "$out"

# The .pt file does not say which architecture it holds; the reference safetensors file does.
config=$("$pidistill" inspect "$golden/ddpmpp_uncond_weights.safetensors" | sed -n 's/^config: //p')
echo "== config of the reference network: $config"

echo "== convert the torch.save checkpoint into a self-describing safetensors file"
"$pidistill" convert "$golden/ddpmpp_uncond_state_dict.pt" "$out/ddpmpp_uncond.safetensors" --config "$config"

echo "== inspect it"
"$pidistill" inspect "$out/ddpmpp_uncond.safetensors"

echo "== denoise the reference inputs x at sigma = 0.002, 0.25, 5, 80 (EDM preconditioning, float64)"
"$pidistill" denoise --net "$out/ddpmpp_uncond.safetensors" --in "$golden/ddpmpp_uncond_io_f64.safetensors" \
  --out "$out/denoised.safetensors" --f64
echo "== demo outputs are in $out/"
