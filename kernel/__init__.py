"""The shared kernel: what every package may import (errors, request context, fault points, migration helpers)."""
