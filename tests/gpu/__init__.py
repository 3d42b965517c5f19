"""Checks that need a GPU with a video engine; skipped without one."""
