#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")
    if not os.environ["DJANGO_SETTINGS_MODULE"].endswith(".production"):
        # Development, tests, the demo: the embedded PostgreSQL and Redis unless the environment names
        # servers (settings only say where they listen; commands start them).
        from gateway.embedded import start_if_unconfigured

        start_if_unconfigured()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
