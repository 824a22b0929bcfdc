"""Errors that are the user's to fix: each message names the file or option and the reason."""


class ModelError(ValueError):
    """A model file that cannot be used."""


class InputError(ValueError):
    """An input file (reference events, a timeline) with bad content."""


class OutputError(ValueError):
    """A destination that cannot be written, or that would overwrite an input or another output."""


class OptionError(ValueError):
    """Options that do not go together, or do not fit the model."""
