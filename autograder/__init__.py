"""Sandboxed, parallel autograding of nbgrader-format Jupyter assignments."""

import sys

__version__ = "0.1.0"

# jsonschema imports rfc3987_syntax when it is installed (jupyter-events asks for it), and
# that module builds a Lark grammar at import: 0.9 s in every grader process that imports
# nbformat (a re-grade of a whole class took 1.6 s, more than half of it this), for the "iri"
# string formats, which no notebook schema uses. None in sys.modules makes that optional
# import fail fast, so jsonschema goes on without those two format checks.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
