"""One exception type for bad input: its message is shown to the user as is."""


class SaesimError(Exception):
    """Bad input or an unusable artifact. The message names the file or key and the problem."""
