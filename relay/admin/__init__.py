"""Relay's administration, shared by the ``relay keys`` CLI and the admin API (``/admin/v1/``)."""
