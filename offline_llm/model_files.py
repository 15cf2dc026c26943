"""Where the GGUF files come from: the model packages on PyPI, assembled or linked into a cache once.

`python -m offline_llm --prepare-only --model all` (run by `make offline-llm`) does it ahead of time;
otherwise the first start does.
"""

import importlib
import importlib.util
import logging
from pathlib import Path
from typing import Any

from offline_llm.catalog import ModelSpec
from offline_llm.errors import OfflineLlmUnavailable

logger = logging.getLogger(__name__)

INSTALL_HINT = "install the offline extra: make offline-llm"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def project_cache_dir() -> Path:
    """`<project>/.cache/models` for a source checkout (editable install), else `./.cache/models`."""
    root = Path(__file__).resolve().parents[1]
    base = root if (root / "pyproject.toml").is_file() else Path.cwd()
    return base / ".cache" / "models"


def missing_package(spec: ModelSpec) -> OfflineLlmUnavailable:
    """The error for a model whose package is not installed, saying how to install it."""
    return OfflineLlmUnavailable(f"the model package {spec.package!r} is not installed; {INSTALL_HINT}")


def locate_model(spec: ModelSpec, cache_dir: Path) -> Path:
    """The GGUF file of `spec`, assembled or linked into `cache_dir` on first use."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    if spec.key == "gemma3-270m":
        return _assemble_gemma(spec, cache_dir)
    if spec.key == "smollm2":
        return _link_smollm2(spec, cache_dir)
    raise KeyError(spec.key)


def _assemble_gemma(spec: ModelSpec, cache_dir: Path) -> Path:
    # The GGUF is split over several packages (PyPI's size limit); the main one assembles it.
    try:
        module: Any = importlib.import_module(spec.module)
    except ImportError as exc:
        raise missing_package(spec) from exc
    target = cache_dir / str(module.MODEL_NAME)
    if not target.exists():
        logger.info("assembling %s from its PyPI chunk packages (once)", target)
    # assemble() checks the sha256 of an existing file and writes it only when it is missing.
    try:
        try:
            return Path(module.assemble(target))
        except FileExistsError:  # a partial or damaged file from an interrupted run
            logger.warning("re-assembling %s: its checksum did not match", target)
            return Path(module.assemble(target, overwrite=True))
    except (ImportError, FileNotFoundError) as exc:  # a chunk package is missing
        raise missing_package(spec) from exc


def _link_smollm2(spec: ModelSpec, cache_dir: Path) -> Path:
    # find_spec does not execute the package (its __init__ imports the `llm` CLI, not needed here).
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        raise missing_package(spec)
    source = Path(next(iter(found.submodule_search_locations))) / SMOLLM2_GGUF
    if not source.is_file():
        raise missing_package(spec)
    link = cache_dir / SMOLLM2_GGUF
    try:
        if link.is_symlink() and link.resolve() != source.resolve():
            link.unlink()
        if not link.exists():
            link.symlink_to(source)
        return link
    except OSError:
        return source
