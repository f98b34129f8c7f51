"""The protocol-server base now ships in the package (:mod:`llmswitch.testing.server`) for plugin authors."""

from llmswitch.testing.server import (  # noqa: F401
    LocalServer,
    ProtocolHandler,
    Recorded,
    ServerState,
    free_port,
    refused_port,
    serve_until_killed,
    words,
)
