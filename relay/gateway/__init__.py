"""Policy: keys and auth, model routing."""
