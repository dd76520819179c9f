"""The quota ledger: double-entry accounts and transfers in the public schema.

Modelled on TigerBeetle: every movement is a transfer with a caller-supplied id (its idempotency
key) from a debit account to a credit account; holds are two-phase (a pending transfer later
posted or voided, at most once, with a timeout). Balances are four running totals per account, so
they are read in O(1). The hot paths are PL/pgSQL functions (see migration 0002) so that each
ledger operation is one round trip and one short transaction; the Python layer maps their
outcomes to domain errors.
"""
