"""Web search for ``/v1/search`` and ``/v1/research``: the providers' APIs (``providers``: Tavily, Exa, Brave,
SearXNG), one search on one channel (``client``), the request (``request``), the optional rerank (``rerank``), and
the requests Relay makes for a client's request and answers itself (``children``: a research's searches, a search's
rerank).

A search provider is a channel (``type = "tavily"``, …), so its searches are routed, failed over, rate-limited,
priced (``[[prices]] request``) and logged as any request (docs/utility.md).
"""
