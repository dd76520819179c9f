"""Stamping jobs: the asynchronous path from a storefront request to a stamped document (channel schema)."""
