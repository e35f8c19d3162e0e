#!/usr/bin/env bash
# The GPU check: what to run once on a GPU machine, in at most ~6 minutes.
#
#   1. installs the carried wheels (.whl/, made here by benchmarks/fetch_wheels.sh) if present;
#   2. nbdev-test --flags "slow cuda" on the notebooks that have `#| cuda` cells;
#   3. benchmarks/inference.py --case sd14: SD-1.4-sized UNet + VAE (random weights, SD 1.4 configs) and a ViT-B/8
#      at 512 px in bf16: images/s, ms per image in UNet / VAE decodes / DINO, peak memory, achieved FLOP/s against
#      the bf16 peak, DINO SDPA and channels_last each on and off (torch.compile only with --compile), glad_nb
#      against the authors' loop structure (FLOPs and seconds), and the GLAD-fast options;
#   4. benchmarks/train.py --case sd14-cuda: steps/s and peak memory at batch 8, gradient checkpointing on and off.
# Everything goes to $OUT (when set) or runs/gpu_check/, with gpu_check.md holding the tables.
#
# On a GPU machine without network:
#   benchmarks/fetch_wheels.sh                                   # on a machine with network, once: .whl/ (git-ignored)
#   benchmarks/gpu_check.sh                                      # on the GPU machine, with .whl/ copied beside the checkout
# Without a GPU (checks the script itself, on the CPU, in well under a minute; tests/test_benchmarks.py runs it):
#   benchmarks/gpu_check.sh --dry-run
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0; COMPILE=()
for a in "$@"; do
  case "$a" in
    --dry-run) DRY=1 ;;
    --compile) COMPILE=(--compile) ;;
    *) echo "usage: $0 [--dry-run] [--compile]" >&2; exit 2 ;;
  esac
done
RES=${OUT:-runs/gpu_check}; mkdir -p "$RES"
MD="$RES/gpu_check.md"; : > "$MD"
START=$(date +%s)
say() { echo "$@" >> "$MD"; }
elapsed() { echo $(( $(date +%s) - START )); }

# -- 1. Python and the carried wheels
if [[ $DRY == 1 && -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=${PY:-python3}; fi
if [[ $DRY == 0 ]] && compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { say "!! installing the carried wheels failed"; exit 1; }
  export PYTHONPATH=/tmp/site; export PATH=/tmp/site/bin:$PATH
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
NBTEST=$(dirname "$PY")/nbdev-test; [[ -x $NBTEST ]] || NBTEST=nbdev-test
say "# GPU check ($( [[ $DRY == 1 ]] && echo 'DRY RUN, tiny components on the CPU' || echo 'full' )), $(date -u '+%Y-%m-%d %H:%M UTC')"
say ""
say '```'
"$PY" - <<'EOF' 2>&1 | tee -a "$MD"
import torch, platform
print('python', platform.python_version(), '| torch', torch.__version__, '| CUDA', torch.cuda.is_available(),
      '|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')
for m in ('diffusers', 'timm', 'nbdev', 'plotly'):
    try: print(m, __import__(m).__version__)
    except Exception as e: print(m, 'MISSING', type(e).__name__)
EOF
say '```'
STATUS=0
step() {  # step NAME TIMEOUT_S CMD...: run, log to $RES/NAME.log, note the result
  local name=$1 to=$2; shift 2
  local t0=$(date +%s)
  timeout "$to" "$@" > "$RES/$name.log" 2>&1; local rc=$?
  say ""; say "## $name: rc $rc in $(( $(date +%s) - t0 )) s (limit $to s)"
  [[ $rc == 0 ]] || STATUS=1
  return $rc
}

# -- 2. the notebooks with `#| cuda` cells
NBS=$(grep -l '#| cuda' nbs/*.ipynb | tr '\n' ' ')
if [[ $DRY == 1 ]]; then
  say ""; say "## nbdev-test: dry run, not run; would run: $NBTEST --flags \"slow cuda\" --n_workers 4 for $NBS"
else
  step nbdev-test 150 bash -c "for nb in $NBS; do $NBTEST --flags 'slow cuda' --n_workers 1 \"\$nb\" || exit 1; done"
  tail -n 20 "$RES/nbdev-test.log" | sed 's/^/    /' >> "$MD"
fi

# -- 3. inference
INF=(--case sd14 --json "$RES/inference.json" "${COMPILE[@]}")
[[ $DRY == 1 ]] && INF+=(--dry-run --n 4 --batch 4)
step inference $([[ $DRY == 1 ]] && echo 240 || echo 210) "$PY" benchmarks/inference.py "${INF[@]}"
sed -n '/^sd14 (/,$p' "$RES/inference.log" >> "$MD"
[[ $STATUS == 0 ]] || tail -n 30 "$RES/inference.log" | sed 's/^/    /' >> "$MD"

# -- 4. training
TR=(--case sd14-cuda --json "$RES/train.json")
[[ $DRY == 1 ]] && TR+=(--dry-run --threads 1) || TR+=(--steps 10 --warmup 2)
step train $([[ $DRY == 1 ]] && echo 240 || echo 150) "$PY" benchmarks/train.py "${TR[@]}"
grep '^|' "$RES/train.log" >> "$MD" || tail -n 30 "$RES/train.log" | sed 's/^/    /' >> "$MD"

say ""; say "total: $(elapsed) s; status $STATUS"
cat "$MD"
exit $STATUS
