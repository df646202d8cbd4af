"""The one exception type users see: the CLI prints its message on one line and exits 2."""


class BitmixError(Exception):
    """Bad input or a failed external step; the message names the file, layer or field."""
