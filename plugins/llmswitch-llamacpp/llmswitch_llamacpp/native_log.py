"""Keep llama.cpp's C logging off the terminal, but remember its last lines to explain failures.

``verbose=False`` is not enough: llama-cpp-python maps ggml's log levels one step off, so warnings such as
"n_ctx_per_seq < n_ctx_train" still reach stderr, and stdout/stderr belong to the answer and our messages.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections import deque
from typing import Any

_lines: deque[str] = deque(maxlen=60)
_callback: Any = None  # ctypes frees a callback nobody references, and the next log line would crash
_lock = threading.Lock()
logger = logging.getLogger("llmswitch.llamacpp.native")


def capture_native_logs(llama_cpp: Any) -> None:
    """Route llama.cpp's log lines into a small buffer (and the debug logger) instead of stderr."""
    global _callback
    with _lock:
        if _callback is not None:
            return

        @llama_cpp.llama_log_callback  # type: ignore[misc]
        def collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            line = text.decode("utf-8", errors="replace")
            _lines.append(line)
            logger.debug("%s", line.rstrip("\n"))

        llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
        _callback = collect


def recent_native_log(lines: int = 8) -> str:
    """The last few complete lines llama.cpp logged, for error messages."""
    text = "".join(_lines)
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def clear_native_log() -> None:
    _lines.clear()
