"""Gemini generateContent: requests, contents, answers and streams to and from the IR; embeddings and images."""
