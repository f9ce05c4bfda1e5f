"""Code that runs in the student's kernel process. It imports nothing of grader (a test asserts it):
its files are copied side by side onto the kernel's only PYTHONPATH under these module names."""

PROBE_FILES = {  # file in this folder -> its name in the kernel
    "probe.py": "grader_probe.py",
    "arrays.py": "grader_probe_arrays.py",
    "names.py": "grader_probe_names.py",
    "legacy.py": "grader_probe_legacy.py",
    "steps.py": "grader_probe_steps.py",
}
