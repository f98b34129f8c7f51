"""The values the backend declares (``INFO``) and the modules that use them share: plain constants, so that
declaring the backend at start-up imports none of the modules that load and run models."""

from __future__ import annotations

DEFAULT_DEMO = "smollm2-135m-instruct"  # the demo model a profile runs with no model_path (see ``embedded``)
DEFAULT_N_CTX = 4096
DEFAULT_N_BATCH = 512

# Prompt formats (see ``prompts``): "auto" chooses one per model.
AUTO = "auto"
TEMPLATE = "template"
TRANSCRIPT = "transcript"
FORMATS = (AUTO, TEMPLATE, TRANSCRIPT, "chatml", "gemma", "llama-3")

# ---- installing and rebuilding llama-cpp-python (the preflight's remedies, and what INFO declares) ----------

LLAMA_DISTRIBUTION = "llama-cpp-python"
# The oldest and newest releases the tests have passed on (the plugin's pyproject.toml accepts up to < 0.4);
# the newest is what scripts/llama-wheel.sh builds and what the remedies install.
TESTED_VERSIONS = ("0.3.16", "0.3.36")
LLAMA_VERSION = TESTED_VERSIONS[-1]
PORTABLE_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
REBUILD_REMEDY = (
    f'rebuild llama-cpp-python for a portable CPU target: CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" '
    f"pip install --force-reinstall --no-deps --no-cache-dir --no-binary {LLAMA_DISTRIBUTION} "
    f"{LLAMA_DISTRIBUTION}=={LLAMA_VERSION}  (in a checkout of llmswitch: scripts/llama-wheel.sh builds and "
    "caches that wheel); on a CPU without AVX2 use -DGGML_AVX2=OFF -DGGML_FMA=OFF as well"
)
INSTALL_REMEDY = (
    f'install it with portable CPU flags: CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" pip install --no-cache-dir '
    f"--no-binary {LLAMA_DISTRIBUTION} {LLAMA_DISTRIBUTION}=={LLAMA_VERSION}"
)
# What doctor says about a crash that reached it only as text (a SIGILL, an out-of-memory, a missing file).
ILLEGAL_INSTRUCTION_REMEDY = (
    "the llama.cpp library was compiled for CPU instructions this machine lacks (AVX2, AVX-512, FMA): "
    + REBUILD_REMEDY
)
OUT_OF_MEMORY_REMEDY = (
    "lower n_gpu_layers (e.g. 20 instead of 30) or n_ctx (e.g. 2048), or use a smaller quantization "
    "(Q4_K_M instead of Q8_0)"
)
MODEL_FILE_REMEDY = "check that the model file {model_file} exists (`ls -l {model_file}`), or point model_path at a " \
                    ".gguf file you have"
GPU_BUILD = f'a GPU build: CMAKE_ARGS="-DGGML_CUDA=on" pip install {LLAMA_DISTRIBUTION}'
