"""The offline LLM's sampling: Ollama's `options` as llama.cpp arguments, and the token cap."""

from offline_llm.ollama_requests import ChatOptions
from offline_llm.sampling import OLLAMA_DEFAULTS, sampling_for


def test_options_left_out_sample_with_ollamas_defaults_up_to_the_cap() -> None:
    sampling = sampling_for(ChatOptions(), max_tokens=512)

    assert sampling.arguments == OLLAMA_DEFAULTS == {"temperature": 0.8, "top_k": 40, "top_p": 0.9}
    assert sampling.stop == ()
    assert sampling.max_tokens == 512


def test_given_options_replace_the_defaults_under_llama_cpps_names() -> None:
    options = ChatOptions(temperature=0, seed=42, top_k=5, min_p=0.05, mirostat=2, repeat_penalty=1.1)

    arguments = sampling_for(options, max_tokens=512).arguments

    assert arguments == {
        "temperature": 0,
        "top_k": 5,
        "top_p": 0.9,
        "min_p": 0.05,
        "repeat_penalty": 1.1,
        "mirostat_mode": 2,
        "seed": 42,
    }


def test_num_predict_is_bounded_by_the_cap_and_unset_or_non_positive_means_the_cap() -> None:
    assert sampling_for(ChatOptions(num_predict=64), max_tokens=512).max_tokens == 64
    assert sampling_for(ChatOptions(num_predict=4096), max_tokens=512).max_tokens == 512
    assert sampling_for(ChatOptions(num_predict=-1), max_tokens=512).max_tokens == 512
    assert sampling_for(ChatOptions(num_predict=0), max_tokens=512).max_tokens == 512


def test_stop_is_a_list_whether_sent_as_one_string_or_many() -> None:
    assert sampling_for(ChatOptions.model_validate({"stop": "\n\n"}), max_tokens=8).stop == ("\n\n",)
    assert sampling_for(ChatOptions.model_validate({"stop": ["}", "\n"]}), max_tokens=8).stop == ("}", "\n")


def test_an_empty_stop_text_is_dropped_rather_than_ending_every_answer_at_once() -> None:
    assert sampling_for(ChatOptions.model_validate({"stop": ["", "}"]}), max_tokens=8).stop == ("}",)
    assert sampling_for(ChatOptions.model_validate({"stop": ""}), max_tokens=8).stop == ()
