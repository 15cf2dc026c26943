"""Ollama's chat `options` turned into llama-cpp-python's sampler arguments and a token limit."""

from dataclasses import dataclass

from offline_llm.ollama_requests import ChatOptions

OLLAMA_DEFAULTS: dict[str, float | int] = {"temperature": 0.8, "top_k": 40, "top_p": 0.9}
"""What Ollama samples with when a request leaves these options out."""

# Ollama's option name -> `Llama.create_completion`'s keyword, where they differ.
_LLAMA_NAMES = {"mirostat": "mirostat_mode"}
_SAMPLER_OPTIONS = (
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
    "seed",
)


@dataclass(frozen=True, slots=True)
class Sampling:
    arguments: dict[str, float | int]
    """Keyword arguments of `Llama.create_completion` (temperature, top_k, seed, ...)."""
    stop: tuple[str, ...]
    """Texts that end the answer (the request's non-empty `stop`; the chat template adds its own)."""
    max_tokens: int
    """`num_predict` bounded by the server's cap; the cap itself when `num_predict` is unset or <= 0."""


def sampling_for(options: ChatOptions, max_tokens: int) -> Sampling:
    """The sampling of a request's `options` on a server that generates at most `max_tokens` tokens."""
    arguments = dict(OLLAMA_DEFAULTS)
    for name in _SAMPLER_OPTIONS:
        value = getattr(options, name)
        if value is not None:
            arguments[_LLAMA_NAMES.get(name, name)] = value
    wanted = options.num_predict or -1
    return Sampling(
        arguments=arguments,
        stop=tuple(text for text in options.stop or () if text),  # an empty stop text would end every answer at once
        max_tokens=max_tokens if wanted <= 0 else min(wanted, max_tokens),
    )
