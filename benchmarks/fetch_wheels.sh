#!/usr/bin/env bash
# Download, on a machine with pip and network, the wheels an offline GPU machine needs that its Python image lacks
# (diffusers, nbdev and its notebook runner, plotly, fastcore, and what they pull in), pinned to the versions of
# this checkout's .venv, into .whl/ (git-ignored). Copy .whl/ to the GPU machine with the checkout, and
# benchmarks/gpu_check.sh installs them there.
#
#   benchmarks/fetch_wheels.sh            # download into .whl/
#   benchmarks/fetch_wheels.sh --list     # only print the pinned list
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
# The packages the GPU machine's image already has (its package list, read 2026-11-17): not downloaded.
DEVICE="absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit
cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec
gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax
jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities
linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-ml-py onnx
onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas
pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn
scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate
tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq
torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop
wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp"
LIST=$("$PY" - "$DEVICE" diffusers nbdev plotly fastcore <<'PYEOF'
import re, sys
from importlib.metadata import distribution, PackageNotFoundError
norm = lambda n: re.sub(r'[-_.]+', '-', n).lower()
device, todo, seen, out = set(map(norm, sys.argv[1].split())), [norm(n) for n in sys.argv[2:]], set(), []
while todo:
    n = todo.pop()
    if n in seen or n in device: continue
    seen.add(n)
    try: d = distribution(n)
    except PackageNotFoundError: continue          # an optional need not installed here (e.g. tomli on 3.11+)
    out.append(f'{d.metadata["Name"]}=={d.version}')
    todo += [norm(re.split(r'[\s;<>=!~\[(]', r, maxsplit=1)[0]) for r in (d.requires or []) if 'extra ==' not in r]
print(' '.join(sorted(out, key=str.lower)))
PYEOF
)
if [[ "${1:-}" == "--list" ]]; then tr ' ' '\n' <<<"$LIST"; exit 0; fi
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || grep -qx '/.whl/' .gitignore || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
for spec in $LIST; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$spec" || echo "!! could not fetch $spec" >&2
done
ls .whl | sed 's/^/  /'; du -sh .whl
echo "copy .whl/ with the checkout to the GPU machine, then run benchmarks/gpu_check.sh there"
