"""The HTTP edge: error envelope and the storefront REST API."""
