"""The report's one kind of bad-input error: the renderer prints it as one line and exits 2."""


class ReportError(Exception):
    """A problem with the inputs (a manifest, report.yaml, a table); str(err) is the one line shown to the user:
    the file, what is wrong with it, and the fix."""
