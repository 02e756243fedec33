"""The ``semcom`` command line: thin wrappers over library functions."""
