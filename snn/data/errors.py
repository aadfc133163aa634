"""The exceptions a command line reports in one line, exiting with their exit_code (see snn.exits)."""

import re

from .. import exits

# torch.utils.data re-raises a worker's exception as exc_type("Caught <type> in DataLoader worker
# process <i>.\nOriginal Traceback ...") (torch._utils.ExceptionWrapper.reraise); its last line is
# "<module>.<type>: <the original message>".
_WORKER_RERAISE = re.compile(r"Caught \w+ in DataLoader worker process \d+\.\nOriginal Traceback")


class DatasetNotFound(Exception):
    """A dataset's files are missing; the message says where they were looked for and how to get them.

    Raised in a DataLoader worker, it reaches the main process with its original one-line message.
    """

    exit_code = exits.USAGE

    def __init__(self, message: str = ""):
        if isinstance(message, str) and _WORKER_RERAISE.match(message):
            message = message.rstrip().rsplit("\n", 1)[-1].partition(": ")[2]
        super().__init__(message)


class DatasetCorrupt(DatasetNotFound):
    """A dataset's files are present but are not the official release or are damaged (checksum mismatch,
    bad layout, truncated or undecodable file, a recording from another camera); the message names the file."""
