"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """A mistake in a config, a CLI argument or an input file: report, don't trace."""


class ConfigError(UserError):
    pass


class CheckpointError(UserError):
    pass
