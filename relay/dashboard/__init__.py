"""The web dashboard: a static bundle served by Relay (docs/dashboard.md)."""
