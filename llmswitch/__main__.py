"""``python -m llmswitch`` and the ``llmswitch`` command: run the CLI.

The cycle collector is off from the first line, before click and the command are imported, and on again
before the command runs (see :func:`llmswitch.cli.end_of_start_up`).
"""

import gc


def run() -> None:
    """The ``llmswitch`` console script."""
    gc.disable()
    from llmswitch.cli import main

    main()


if __name__ == "__main__":
    run()
