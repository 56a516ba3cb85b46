"""Async handlers that glue a request to the pipeline: ``async def (relay, request, out)``."""
