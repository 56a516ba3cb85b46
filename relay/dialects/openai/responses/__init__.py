"""OpenAI Responses: requests, items, answers and streams to and from the IR, and stored-response replay."""
