"""A deterministic mock model, and a mock upstream server that speaks its dialects."""
