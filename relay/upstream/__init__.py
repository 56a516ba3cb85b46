"""Channels: where a request goes, with which credentials, and the one shared HTTP client."""
