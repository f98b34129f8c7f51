"""Hermetic tests: the fixtures ship in the package (llmswitch.testing.fixtures) so plugins can use them too."""

pytest_plugins = ["llmswitch.testing.fixtures"]
