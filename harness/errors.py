"""Exceptions the CLI turns into clean messages and exit codes."""


class ConfigError(Exception):
    """Bad goals.yaml / agent file / CLI usage: exit code 2, never a traceback."""

    def __init__(self, messages):
        if isinstance(messages, str):
            messages = [messages]
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))


class ProviderError(Exception):
    """The model provider failed after all retries; `tries` holds each try's status and error."""

    def __init__(self, message: str, tries: list | None = None):
        super().__init__(message)
        self.tries = list(tries or [])
