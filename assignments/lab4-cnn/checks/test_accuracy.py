"""accuracy: the grader trains the student's `build_model` (autograder.accuracy_checks).

`[accuracy]` in assignment.toml names the function, data set, recipe, budgets and the
reference architecture (checks/_reference_model.py); the engine's check does the rest.
"""

import pytest

from autograder.accuracy_checks import (  # noqa: F401 - collected by pytest from here
    graded,
    pytest_generate_tests,
    test_trained_accuracy,
)

pytestmark = pytest.mark.question("accuracy")
