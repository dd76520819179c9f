"""Quota and money: the ledger (shared), retail orders and payments (per channel), reconciliation."""
