"""One exception tree, so the CLI and the bot can turn any failure into a plain message.

Every message names the file, key or column, the bad value and what was expected; callers
print ``str(error)`` and never a traceback.
"""


class ChurnbotError(Exception):
    """Base of every error churnbot raises on purpose."""


class ConfigError(ChurnbotError):
    """A config file is missing, unparsable or has a wrong key or value."""


class DataContractError(ChurnbotError):
    """Account data does not meet the contract (missing column, too many bad rows, ...)."""


class SourceError(ChurnbotError):
    """An account-data source (file or HTTP endpoint) could not be read."""


class ModelError(ChurnbotError):
    """A model is missing, tampered with, untrusted or cannot be trained."""
