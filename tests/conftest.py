"""Process-wide set-up for the test session.

numpy (under matplotlib, which draws the HTML report's plots) cannot be imported twice in one
process, and an in-process pytester run removes the modules it imported when it ends: a plugin test
that wrote a report left every later report in the session without its plot. Imported once here,
before any such run, they stay.
"""
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
except ImportError:           # the report's plots are optional (extra 'report')
    pass


# Hypothesis draws the same examples on every run (derandomize, no example database): a CI run
# is reproducible and a test cannot pass today and fail tomorrow on the same code. A random
# search is still one environment variable away (HYPOTHESIS_PROFILE=explore) for bug hunting.
import os as _os  # noqa: E402

from hypothesis import settings as _hsettings  # noqa: E402

_hsettings.register_profile("duohil", derandomize=True, database=None, print_blob=True)
_hsettings.register_profile("explore", derandomize=False, print_blob=True)
_hsettings.load_profile(_os.environ.get("HYPOTHESIS_PROFILE", "duohil"))
