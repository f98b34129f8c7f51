"""``python -m llmswitch`` and the ``llmswitch`` command: run the CLI.

The cycle collector is off from the first line, before click and the command are imported, and on again
before the command runs (see :func:`llmswitch.cli.end_of_start_up`). The process ends without the
interpreter's tear-down once everything a normal exit does has been done (:mod:`llmswitch.process_exit`).
"""

import gc


def run() -> None:
    """The ``llmswitch`` console script."""
    gc.disable()
    from llmswitch.cli import main

    try:
        main()
    except SystemExit as stop:
        from llmswitch.process_exit import exit_process

        exit_process(stop.code)


if __name__ == "__main__":
    run()
