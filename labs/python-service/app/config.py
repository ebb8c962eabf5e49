"""The service's settings, read once from the environment at start (a change means a new process)."""

import os


def _flag(name):
    return os.environ.get(name, "") == "true"


PORT = int(os.environ.get("PORT", "8000"))
HOST = os.environ.get("HOST", "0.0.0.0")
INVENTORY_URL = os.environ.get("INVENTORY_URL", "http://inventory:7000").rstrip("/")
INVENTORY_TIMEOUT_SECONDS = float(os.environ.get("INVENTORY_TIMEOUT_SECONDS", "5"))

# The fix of Part 1, shipped behind a flag: one batch request for all of an order's items.
INVENTORY_BATCH = _flag("INVENTORY_BATCH")
# The fix of Part 2: how many rendered reports the cache keeps (0: no bound, the leak).
REPORT_CACHE_MAX = int(os.environ.get("REPORT_CACHE_MAX", "0"))

# The debug routes (/debug/...): off unless DEBUG_ENDPOINTS is exactly `true`, and then only for
# requests that carry DEBUG_TOKEN (16 characters or more) in the x-debug-token header.
DEBUG_ENDPOINTS = _flag("DEBUG_ENDPOINTS")
DEBUG_TOKEN = os.environ.get("DEBUG_TOKEN", "")
DEBUG_TOKEN_MIN_LENGTH = 16
