"""Issuer staff (users of the public schema): the audit log of what they do (``staff.audit.record``)
and their second sign-in factor (``staff.otp``, TOTP devices of django-otp)."""
