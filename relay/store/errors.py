"""The store's errors: the same types whichever backend raised them."""

from __future__ import annotations


class StoreError(Exception):
    """The store cannot do what was asked: bad URL, unreachable database, schema newer than this Relay."""


class StoreURLError(StoreError, ValueError):
    """``[store] url`` is not one Relay understands."""


class IntegrityError(StoreError):
    """A constraint refused the write (a duplicate key, a failed check): nothing was written."""
