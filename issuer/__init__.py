"""Issuer-side stamping engine: PDF inspection, stamp rendering, signing and verification."""
