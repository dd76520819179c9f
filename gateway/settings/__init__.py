"""Settings split: ``base`` (everything read from the environment, in one place), and
``local``, ``test`` and ``production`` on top of it."""
