"""The two ways the offline LLM refuses: it cannot start, or it cannot serve one request."""


class OfflineLlmUnavailable(RuntimeError):
    """llama-cpp-python or a model package is missing; the message says how to install it."""


class RequestError(ValueError):
    """A chat request this server cannot serve; answered as HTTP 400 with Ollama's `{"error": message}`."""
