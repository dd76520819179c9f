"""Retail: a channel's orders, payments and refunds (tenant app: rows live in the channel's schema)."""
