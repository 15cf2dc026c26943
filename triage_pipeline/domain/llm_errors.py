"""Errors an LLM gateway raises, classified so every failed attempt records why."""


class LlmError(Exception):
    """Base class: the LLM did not produce a valid triage answer."""

    error_class = "llm_error"

    def __init__(self, message: str, raw_output: str | None = None) -> None:
        super().__init__(message)
        self.raw_output = raw_output
        self.host: str | None = None
        """The LLM host the failed call went to (set by the host pool); None when none was tried."""


class LlmUnavailable(LlmError):
    """The LLM server could not be reached (connection refused, DNS, dropped connection)."""

    error_class = "unavailable"


class LlmUnreached(LlmUnavailable):
    """No LLM host could take the call: every host refused the connection or was marked down.

    The request never reached a model, so the attempt it ended is not counted against the job's
    MAX_ATTEMPTS (it is still logged); the job is eligible again at once.
    """

    error_class = "unreached"


class LlmTimeout(LlmError):
    """The LLM server did not answer within the configured timeout."""

    error_class = "timeout"


class LlmHttpError(LlmError):
    """The LLM server answered with an HTTP error status."""

    error_class = "http_error"

    def __init__(self, message: str, status_code: int, raw_output: str | None = None) -> None:
        super().__init__(message, raw_output)
        self.status_code = status_code


class ModelNotFound(LlmHttpError):
    """The configured model is not available on the LLM server (pull it first)."""

    error_class = "model_not_found"


class InvalidJsonOutput(LlmError):
    """The model's output is not valid JSON."""

    error_class = "invalid_json"


class SchemaViolation(LlmError):
    """The model's output is JSON but does not match the answer schema."""

    error_class = "schema_violation"
