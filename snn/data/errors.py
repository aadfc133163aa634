"""The exceptions a command line catches to print one line and exit with code 2."""


class DatasetNotFound(Exception):
    """A dataset's files are missing; the message says where they were looked for and how to get them."""


class DatasetCorrupt(DatasetNotFound):
    """A dataset's files are present but are not the official release (checksum mismatch, bad layout)."""
