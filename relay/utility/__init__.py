"""The task endpoints beside the model APIs (docs/utility.md): a document, a text or a URL in; its text, its
segments, a summary, a translation, search results or a research report out. Each is a small pipeline over
Relay's own channels (``calls``: model calls billed to the caller's key and logged under the parent request) and a
few libraries of the ``utility`` extra (``pip install 'relay[utility]'``), whose blocking work runs in worker
threads (``blocking``).

Its layer is the endpoints': it imports the gateway, upstream, dialects, store and ``relay.endpoints``' shared
helpers; only ``relay.routes`` imports it.
"""
