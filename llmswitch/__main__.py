"""``python -m llmswitch`` runs the CLI."""

from llmswitch.cli import main

if __name__ == "__main__":
    main()
