"""The data layer's errors: each message is one line (or the three ways to provide a dataset)
that names the dataset, the file and what to do."""


class DataError(Exception):
    """A dataset cannot be read or prepared; the message says what to do."""


class DataNotFoundError(DataError):
    """A dataset is neither prepared nor obtainable from local files or the network."""


class DataFileError(DataError):
    """A dataset file is present but wrong: bad checksum, truncated, not IDX."""
