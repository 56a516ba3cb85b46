"""``/v1/research``'s pipeline (``pipeline``: plan, searches, pages, summaries, report) and its searches, each a
``/v1/search`` request of its own (``searches``)."""
