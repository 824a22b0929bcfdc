"""Label names with a meaning of their own across the pipeline."""

NEGATIVE = "other"  # non-target sounds (data.negatives): a class to reject, not to detect


def negative_index(classes: list[str]) -> int | None:
    """The position of NEGATIVE among the classes, or None when there are no negatives."""
    return classes.index(NEGATIVE) if NEGATIVE in classes else None
