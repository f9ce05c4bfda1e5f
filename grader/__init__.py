"""grader: automated grading and reports for the Keras Fashion-MNIST homework "Trabajo 2"."""

__version__ = "0.1.0"
