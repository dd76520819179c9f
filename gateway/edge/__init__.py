"""Per-channel edge data: idempotency records, webhook endpoints and deliveries."""
