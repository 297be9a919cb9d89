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
