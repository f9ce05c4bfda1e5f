"""Test-only: shrinks the capture limits inside `python -m grader.worker` processes.

tests/test_adversarial.py puts this folder first on PYTHONPATH of the batch it starts and sets
GRADER_TEST_CAPTURE_LIMITS to a JSON object of `grader.capture.runner.Limits` fields, because
GradeOptions has no way yet to pass capture limits to the workers. The sandboxed kernel itself
never sees this file: its launcher runs `python -I` with a fresh environment.
"""

import json
import os

_spec = os.environ.get("GRADER_TEST_CAPTURE_LIMITS")
if _spec:
    import grader.capture.runner as _runner

    _runner.capture_submission.__kwdefaults__["limits"] = _runner.Limits(**json.loads(_spec))
