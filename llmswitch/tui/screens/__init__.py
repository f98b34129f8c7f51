"""Screens of the TUI: the chat, the profile picker, the settings editor, the doctor, help and dialogs."""
