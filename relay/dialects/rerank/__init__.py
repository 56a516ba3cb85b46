"""Rerank (Cohere and Jina shape): requests, answers and the upstream variants."""
