"""Anthropic Messages: requests, answers, streams and errors to and from the IR."""
