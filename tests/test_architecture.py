"""Rules of the package's layout that a review would otherwise have to catch."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "autograder"


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_engine_names_no_assignment():
    """Assignment-specific settings live in the assignment's folder, not in the engine.

    Only the demo, which grades the bundled Lab 4 examples, may name it.
    """
    named = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if p.name != "demo.py" and re.search("lab4", p.read_text(), re.IGNORECASE)
    ]
    assert named == []


def test_diagnostics_go_through_logging():
    writes = [
        str(p.relative_to(PACKAGE)) for p in _modules() if "sys.stderr.write(" in p.read_text()
    ]
    assert writes == []


def test_exit_codes_are_not_literals_in_the_cli():
    text = (PACKAGE / "cli.py").read_text()
    assert not re.search(r"sys\.exit\(\s*\d", text)
    assert not re.search(r"sys\.exit\(.*\belse \d", text)


# The README's module map, one row per layer: a module imports only its own row or rows above.
LAYERS = [
    "exceptions logs kinds safeio cleantext datasets config",
    "submissions notebook release runenv consistency",
    "sandbox warm zygote_side kernel kernel_side modelspec modelsize model_side",
    "session bridge model_host plugin checks model_checks tbevents scoring",
    "training train_worker reference accuracy_grade accuracy_checks",
    "grade tasks digest reports pool classwork answers manual late similarity formgrader export"
    " batch distributed",
    "validate student_check cli demo",
]


def _imports(path: Path) -> set[str]:
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("autograder")
        ):
            parts = node.module.split(".")
            found |= {a.name for a in node.names} if len(parts) == 1 else {parts[1]}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("autograder.")}
    return found


def test_modules_import_only_their_layer_or_lower():
    layer = {name: i for i, row in enumerate(LAYERS) for name in row.split()}
    upward = []
    for path in _modules():
        name = "reports" if path.parent.name == "reports" else path.stem
        if name == "__init__":
            continue
        assert name in layer, f"{name} is missing from the README's module map"
        upward += [
            f"{name} -> {dep}"
            for dep in _imports(path)
            if dep in layer and dep != name and layer[dep] > layer[name]
        ]
    assert upward == []


def test_every_environment_variable_read_is_in_the_readme():
    readme = (PACKAGE.parent / "README.md").read_text()
    section = readme.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for path in _modules():
        text = path.read_text()
        names |= set(re.findall(r"environ\.get\(\s*\"([A-Z_][A-Z0-9_]*)\"", text))
        names |= set(re.findall(r"getenv\(\s*\"([A-Z_][A-Z0-9_]*)\"", text))
    assert names, "the pattern found nothing: update this test"
    missing = sorted(n for n in names if f"`{n}`" not in section)
    assert missing == []


def test_the_grader_does_not_pay_for_a_grammar_it_never_uses():
    """nbformat imports jsonschema, which would build rfc3987_syntax's Lark grammar (0.9 s
    per grader process, more than half of a whole class's re-grade); autograder skips it."""
    import subprocess
    import sys

    code = (
        "import sys, autograder.batch, nbformat, jsonschema._format\n"
        "print(sys.modules.get('rfc3987_syntax', 'absent'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"
