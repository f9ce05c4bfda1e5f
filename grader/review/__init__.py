"""The instructor in charge: overrides of verdicts, the to-review queue, similarity between hand-ins."""
