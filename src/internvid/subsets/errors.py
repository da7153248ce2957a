"""The one error of the subsets: bad input or options."""


class SubsetError(ValueError):
    """Bad input or options for a subset (the CLI logs it and exits with status 2)."""
