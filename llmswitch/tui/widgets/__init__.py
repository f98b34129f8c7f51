"""Widgets of the TUI: the sidebar, the chat log and its messages, the prompt box, the status line."""
