"""The config layer's error type (its own module: every config module raises it)."""


class ConfigError(ValueError):
    """A bad config file, key or value; the message names the key and what was expected."""
