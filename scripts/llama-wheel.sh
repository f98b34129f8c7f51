#!/usr/bin/env bash
# Build (once) and print the path of a llama-cpp-python wheel made with portable CPU flags.
# With --check: build nothing, exit 0 when the wheel is already cached (and 1 when it would be built).
#
# Why: a native build (-DGGML_NATIVE=ON, the default) on a CPU that advertises AMX dies with SIGILL at the
# first matrix product. pip's own wheel cache is keyed by the sdist, not by CMAKE_ARGS, so it would happily
# hand back a wheel built with other flags. We keep our own cache keyed by version + flags + interpreter,
# and always bypass pip's cache when building.
set -euo pipefail

# The version CI and install.sh build; the plugin accepts the tested range in its pyproject.toml. The cache key
# below includes it, so a new version is built once and never confused with an older wheel.
LLAMA_CPP_VERSION="${LLAMA_CPP_VERSION:-0.3.36}"
export CMAKE_ARGS="${LLMSWITCH_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
PYTHON="${PYTHON:-python3}"

abi=$("$PYTHON" -c 'import sys, platform; print(f"cp{sys.version_info[0]}{sys.version_info[1]}-{platform.machine()}")')
key=$(printf '%s|%s|%s' "$LLAMA_CPP_VERSION" "$CMAKE_ARGS" "$abi" | sha256sum | cut -c1-16)
cache_root="${LLMSWITCH_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmswitch-wheels}"
dir="$cache_root/llama-cpp-python-$LLAMA_CPP_VERSION-$key"

wheel=$(ls "$dir"/llama_cpp_python-*.whl 2>/dev/null | head -n1 || true)
if [ "${1:-}" = "--check" ]; then
  [ -n "$wheel" ]
  exit
fi
if [ -z "$wheel" ]; then
  echo "llama-wheel: building llama-cpp-python $LLAMA_CPP_VERSION with CMAKE_ARGS='$CMAKE_ARGS' (about 12 minutes)" >&2
  tmp="$dir.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  "$PYTHON" -m pip wheel --no-cache-dir --no-deps --no-binary llama-cpp-python -w "$tmp" \
    "llama-cpp-python==$LLAMA_CPP_VERSION" >&2
  printf 'version=%s\nCMAKE_ARGS=%s\nabi=%s\n' "$LLAMA_CPP_VERSION" "$CMAKE_ARGS" "$abi" > "$tmp/FLAGS"
  rm -rf "$dir" && mv "$tmp" "$dir"
  wheel=$(ls "$dir"/llama_cpp_python-*.whl | head -n1)
else
  echo "llama-wheel: reusing $wheel (built with: $(grep CMAKE_ARGS "$dir/FLAGS"))" >&2
fi
echo "$wheel"
