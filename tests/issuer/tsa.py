"""The tests' time-stamping authority is the product's local one (``issuer.signing.local_tsa``)."""

from issuer.signing.local_tsa import TimeStampAuthority, TsaServer

__all__ = ["TimeStampAuthority", "TsaServer"]
