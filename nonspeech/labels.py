"""Label names with a meaning of their own across the pipeline."""

NEGATIVE = "other"  # non-target sounds (data.negatives): a class to reject, not to detect
