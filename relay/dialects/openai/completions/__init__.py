"""OpenAI's legacy Completions: requests and answers, carried over Chat-shaped channels."""
