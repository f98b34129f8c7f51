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
