"""The one exception type users see: the CLI prints its message as a single line and exits 2."""


class RomeError(Exception):
    """Bad input (params, data, genotype, checkpoint): message names the file/key, value and expectation."""
