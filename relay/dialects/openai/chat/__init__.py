"""OpenAI Chat Completions: requests, answers and streams to and from the IR."""
