"""The debug routes: a profiling window over live requests and tracemalloc snapshots.

Off by default. They exist only when DEBUG_ENDPOINTS=true (else 404, like any unknown path), and
then answer only requests carrying DEBUG_TOKEN in x-debug-token (401); a token shorter than 16
characters switches them off (503) rather than guarding them with something guessable.
"""

import cProfile
import hmac
import marshal
import pickle
import pstats
import threading
import time
import tracemalloc

import config

MAX_PROFILE_SECONDS = 30

_window_lock = threading.Lock()
_window = None  # the profiles of the requests answered while a window is open


class Busy(Exception):
    """A profiling window is already open."""


def refusal(headers):
    """Why a debug request is refused, as (status, body), or None when it may proceed."""
    if not config.DEBUG_ENDPOINTS:
        return 404, {"error": "not_found"}
    if len(config.DEBUG_TOKEN) < config.DEBUG_TOKEN_MIN_LENGTH:
        return 503, {"error": "debug_token_too_short",
                     "detail": f"DEBUG_TOKEN must be at least {config.DEBUG_TOKEN_MIN_LENGTH} characters"}
    given = headers.get("x-debug-token", "")
    if not hmac.compare_digest(given.encode(), config.DEBUG_TOKEN.encode()):
        return 401, {"error": "unauthorized", "detail": "x-debug-token is missing or wrong"}
    return None


def profiled(handle, *args):
    """Run one request's handler (`handle(*args)`), under cProfile when a profiling window is open.

    cProfile follows one thread; the server answers each request on its own thread, so each
    request gets its own profiler and the window merges them when it closes.
    """
    window = _window
    if window is None:
        return handle(*args)
    profile = cProfile.Profile()
    try:
        return profile.runcall(handle, *args)
    finally:
        with _window_lock:
            if _window is window:
                window.append(profile)


def profile_window(seconds):
    """Profile the requests answered in the next `seconds`; the merged stats as a pstats file."""
    global _window
    with _window_lock:
        if _window is not None:
            raise Busy()
        _window = window = []
    try:
        time.sleep(seconds)
    finally:
        with _window_lock:
            _window = None
    if not window:
        return marshal.dumps({}), 0
    stats = pstats.Stats(window[0])
    for profile in window[1:]:
        stats.add(profile)
    return marshal.dumps(stats.stats), len(window)


def tracemalloc_start(frames):
    if not tracemalloc.is_tracing():
        tracemalloc.start(frames)
    return tracemalloc_state()


def tracemalloc_stop():
    tracemalloc.stop()  # also frees the traces it kept
    return tracemalloc_state()


def tracemalloc_state():
    tracing = tracemalloc.is_tracing()
    current, peak = tracemalloc.get_traced_memory() if tracing else (0, 0)
    return {"tracing": tracing, "frames": tracemalloc.get_traceback_limit() if tracing else 0,
            "tracedBytes": current, "peakTracedBytes": peak}


def tracemalloc_snapshot():
    """Every block traced now, without tracemalloc's and the import system's own, pickled as
    tracemalloc.Snapshot.dump writes it (tracemalloc.Snapshot.load reads it)."""
    snapshot = tracemalloc.take_snapshot().filter_traces((
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
        tracemalloc.Filter(False, "<unknown>"),
        tracemalloc.Filter(False, tracemalloc.__file__),
    ))
    return pickle.dumps(snapshot, pickle.HIGHEST_PROTOCOL)


def profiling():
    return _window is not None
