"""The terminal app (``llmswitch tui``): screens in ``screens/``, widgets in ``widgets/``, styles in
``styles/*.tcss``; the conversation logic without widgets in :mod:`llmswitch.tui.session`.

Nothing here is imported by ``llmswitch --help``: the ``tui`` command imports it when it runs.
"""
