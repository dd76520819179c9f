"""Brownout: the issuer's controls for refusing the lowest classes of new work first under load.

The classes, highest first: (1) stamps already accepted, (2) crediting paid orders and sending owed
refunds, (3) new stamp requests, (4) new purchases, (5) new customers. Classes 1 and 2 are never
paused; classes 3 to 5 can be, for one channel or for all, by hand (back office, ``manage.py
brownout``) or automatically on backlog age (``tasks.evaluate``). Pausing a class pauses the lower ones
with it. See docs/stamping.md ("Overload priorities and brownout").

A separate app (label ``brownout``) in the public schema, inside the stamping package because it joins
rooms the way stamping does: it reads the stamping backlog, writes each channel's webhook outbox and the
staff audit log.
"""
