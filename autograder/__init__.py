"""Sandboxed, parallel autograding of nbgrader-format Jupyter assignments."""

__version__ = "0.1.0"
