"""The offline demo LLM: a small GGUF model served over Ollama's HTTP API (demo quality, not production).

`make run` starts it (`python -m offline_llm`) when LLM_BASE_URL is unset, so a newcomer sees real LLM
triage without Ollama or network. Its answers are often wrong: it proves the pipeline works offline.

Where things are:

- `ollama_responses`: the JSON shapes Ollama answers with (shared with the fake Ollama of the tests);
- `ollama_requests`: the chat and show request bodies, validated as Ollama reads them;
- `backend`: what the HTTP app needs from a model (`ChatBackend`), whatever runs it;
- `llama_backend`: the llama-cpp-python implementation (llama_cpp imported only when a model loads);
- `catalog` and `model_files`: the servable models and how their GGUF files come out of PyPI packages;
- `grammar` and `sampling`: `format` and `options` turned into llama.cpp's grammar and sampler arguments;
- `generation_worker`: one generation at a time, on one thread;
- `app`: the FastAPI app (`create_app(backend)`), with `json_body_route` reading bodies as Ollama does;
- `__main__`: the command line (`python -m offline_llm`), served by uvicorn;
- `errors`: why the server cannot start (`OfflineLlmUnavailable`) or serve a request (`RequestError`).

Nothing here imports llama_cpp at import time, so the app and its tests run without compiling llama.cpp.
"""
