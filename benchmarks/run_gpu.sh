#!/usr/bin/env bash
# Every benchmark on one CUDA GPU, in one command (sized for 8 minutes on an H100), then the README's tables.
#
#   bash benchmarks/run_gpu.sh                 # CUDA: writes benchmarks/results/*_gpu.json and tables_gpu.md
#   bash benchmarks/run_gpu.sh --out DIR       # the same, into DIR
#   bash benchmarks/run_gpu.sh --dry-run       # CPU, tiny sizes, the same code path (CI): into a temporary folder
#
# What it runs (see docs/benchmarks.md):
#   gan_gpu.json                      PaintsTorch/StencilTorch at 512², batch 1 and 64, fp32; training step (512², batch 8)
#   gan_gpu_bf16_channels_last.json   the same grid in bf16, channels_last
#   gan_gpu_bf16_compile.json         the same grid in bf16, channels_last + torch.compile
#   stablepaint_gpu_4steps.json       StablePaint vs ControlNet vs in-painting, 512², 4-step calls, bf16, SDPA and
#                                     xformers (where installed); fp32 training step throughput and peak VRAM
#   stablepaint_gpu_20steps.json      the same with 20-step calls
#   stablepaint_gpu_compile.json      StablePaint alone, 4 steps, bf16, channels_last + torch.compile
#   synthesis_gpu.json                training-data synthesis with and without the segmentation cache (CPU side)
# Environment: PYTHON (default python), STABLEPAINT_DATA (illustrations for synthesis, default ../shared/data/adventurer),
# STABLEPAINT_VGG16_WEIGHTS (VGG16 for the GAN training step; random weights when absent: the timing is the same).
set -euo pipefail

usage() {
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
}

DRY_RUN=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run | --dry_run) DRY_RUN=1 ;;
        --out)
            [ $# -ge 2 ] || { echo "run_gpu.sh: --out needs a folder" >&2; exit 2; }
            OUT="$2"
            shift
            ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run_gpu.sh: unknown argument '$1' (expected --dry-run, --out DIR, --help)" >&2; exit 2 ;;
    esac
    shift
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/benchmarks"
PYTHON="${PYTHON:-python}"
DATA="${STABLEPAINT_DATA:-$REPO/../shared/data/adventurer}"
VGG="${STABLEPAINT_VGG16_WEIGHTS:-$REPO/../shared/weights/vgg16_features.safetensors}"
[ -f "$VGG" ] || VGG=random

if [ "$DRY_RUN" = 1 ]; then
    OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/run_gpu_dry_run.XXXXXX")}"
    DEVICE=cpu
    # Tiny models and sizes, one timed call: seconds per benchmark. torch.compile with the `eager` backend goes
    # through the same wrapping without compiling; bf16 on CPU is slow, so fp32 stands in for it.
    DTYPE=fp32
    GAN=(--config tiny --sizes 32 --batch-sizes 1 --repeats 1 --warmup 0 --threads 2)
    GAN_TRAIN=(--train_resolution 32 --batch_size 1 --train_repeats 1)
    SP=(--sizes 32 --batch-sizes 1 --repeats 1 --threads 2 --unet_channels 8 16 --vae_channels 8 16)
    SP+=(--cross_attention_dim 8 --attention_head_dim 2)
    STEPS_SHORT=2
    STEPS_LONG=3
    COMPILE=(--compile --compile-backend eager)
    SYNTH=(--resolutions 32 --n 2 --cache-rounds 1)
else
    OUT="${OUT:-$BENCH/results}"
    if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        echo "run_gpu.sh: CUDA is not available on this machine (torch.cuda.is_available() is False)." >&2
        echo "run_gpu.sh: run it on a CUDA GPU, or use --dry-run to check the benchmarks on CPU." >&2
        exit 2
    fi
    DEVICE=cuda
    DTYPE=bf16
    GAN=(--config default --sizes 512 --batch-sizes 1 64 --repeats 5 --warmup 2)
    GAN_TRAIN=(--train_resolution 512 --batch_size 8 --train_repeats 3)
    # Stable Diffusion 1.5's UNet and VAE widths.
    SP=(--sizes 512 --batch-sizes 1 --repeats 3 --unet_channels 320 640 1280 1280 --vae_channels 128 256 512 512)
    SP+=(--layers_per_block 2 --cross_attention_dim 768 --attention_head_dim 8)
    STEPS_SHORT=4
    STEPS_LONG=20
    COMPILE=(--compile)
    SYNTH=(--resolutions 512 --n 32 --cache-rounds 2)
fi
mkdir -p "$OUT"
echo "run_gpu.sh: device $DEVICE, writing to $OUT"

run() {
    local name="$1"
    shift
    local start=$SECONDS
    echo "== $name"
    "$PYTHON" "$@"
    echo "== $name: $((SECONDS - start)) s"
}

run gan_gpu "$BENCH/bench_gan.py" --device "$DEVICE" "${GAN[@]}" "${GAN_TRAIN[@]}" --vgg_weights "$VGG" \
    --out "$OUT/gan_gpu.json"
run gan_gpu_bf16_channels_last "$BENCH/bench_gan.py" --device "$DEVICE" "${GAN[@]}" --dtype "$DTYPE" \
    --channels-last --no-training --out "$OUT/gan_gpu_bf16_channels_last.json"
run gan_gpu_bf16_compile "$BENCH/bench_gan.py" --device "$DEVICE" "${GAN[@]}" --dtype "$DTYPE" --channels-last \
    "${COMPILE[@]}" --no-training --out "$OUT/gan_gpu_bf16_compile.json"
run stablepaint_gpu_4steps "$BENCH/bench_stablepaint.py" --device "$DEVICE" "${SP[@]}" --dtype "$DTYPE" \
    --steps "$STEPS_SHORT" --variants sdpa xformers --training --out "$OUT/stablepaint_gpu_4steps.json"
run stablepaint_gpu_20steps "$BENCH/bench_stablepaint.py" --device "$DEVICE" "${SP[@]}" --dtype "$DTYPE" \
    --steps "$STEPS_LONG" --variants sdpa xformers --out "$OUT/stablepaint_gpu_20steps.json"
run stablepaint_gpu_compile "$BENCH/bench_stablepaint.py" --device "$DEVICE" "${SP[@]}" --dtype "$DTYPE" \
    --steps "$STEPS_SHORT" --variants sdpa --pipelines StablePaint --channels-last "${COMPILE[@]}" \
    --out "$OUT/stablepaint_gpu_compile.json"
if [ -d "$DATA" ]; then
    run synthesis_gpu "$BENCH/bench_synthesis.py" --data "$DATA" --no-grid "${SYNTH[@]}" \
        --out "$OUT/synthesis_gpu.json"
else
    echo "== synthesis_gpu: skipped, no illustrations at $DATA (set STABLEPAINT_DATA)"
fi

# One table per report (reports of one benchmark with different settings are not merged).
TABLES="$OUT/tables_gpu.md"
: > "$TABLES.tmp"
for report in "$OUT"/*_gpu.json "$OUT"/*_gpu_*.json; do
    [ -f "$report" ] || continue
    { echo "### $(basename "$report")"; echo; "$PYTHON" "$BENCH/make_tables.py" "$report"; echo; } >> "$TABLES.tmp"
done
mv "$TABLES.tmp" "$TABLES"
echo "run_gpu.sh: done in $SECONDS s; tables in $TABLES"
