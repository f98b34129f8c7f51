"""The OpenAI protocol server ships in the package (:mod:`llmswitch.testing.openai_server`) for plugin authors."""

from llmswitch.testing.openai_server import (  # noqa: F401
    CREATED,
    DEFAULT_MODELS,
    OpenAIHandler,
    chunk_line,
    error_body,
    main,
    openai_server,
    usage_line,
)

if __name__ == "__main__":
    main()
