"""OpenAI's client APIs: Chat Completions, Completions, Responses, Embeddings and Moderations."""
