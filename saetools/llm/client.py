"""One client for any OpenAI-compatible chat endpoint: hosted, llama.cpp, vLLM, Ollama or
``saetools serve``.

* configuration from arguments or the environment: ``SAETOOLS_LLM_BASE_URL`` (or
  ``OPENAI_BASE_URL``), ``SAETOOLS_LLM_MODEL``, ``SAETOOLS_LLM_API_KEY`` (or ``OPENAI_API_KEY``);
* bounded concurrency (a thread pool of ``concurrency`` workers);
* retries with exponential backoff on timeouts, connection errors, 429 and 5xx; a reply that the
  caller's ``parse`` rejects is asked again (with a different seed) and, after the last try,
  recorded as a failure — one bad item never aborts a job;
* an on-disk cache keyed by the full request (endpoint, model, messages, parameters): every
  reply is kept, malformed ones included, so a rerun replays the same attempts and costs
  nothing (``use_cache=False`` asks afresh);
* token accounting: new prompt and completion tokens, cached requests and failures.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import SaetoolsError
from ..paths import saetools_home


class LLMError(SaetoolsError):
    """The LLM cannot be used at all (not configured, server unreachable on every try)."""


class LLMResult(NamedTuple):
    """One request's outcome: the reply text, the parsed value (None on failure), whether it
    came from the cache, and the error message of a failed request."""

    text: str | None
    value: Any
    cached: bool
    error: str | None = None


class LLMEstimate(NamedTuple):
    """The size of an LLM job before it runs: uncached requests and tokens."""

    requests: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens

    def describe(self) -> str:
        """One line with the size and, where ``SAETOOLS_LLM_PRICE_IN``/``_OUT`` ($ per 1M
        tokens) are set, the cost."""
        price_in = float(os.environ.get("SAETOOLS_LLM_PRICE_IN", 0) or 0)
        price_out = float(os.environ.get("SAETOOLS_LLM_PRICE_OUT", 0) or 0)
        cost = (self.prompt_tokens * price_in + self.completion_tokens * price_out) / 1e6
        priced = (
            f", about ${cost:.2f}"
            if price_in or price_out
            else " (set SAETOOLS_LLM_PRICE_IN/_OUT, $ per 1M tokens, for a cost)"
        )
        return (
            f"LLM job: {self.requests} new requests, about {self.prompt_tokens:,} prompt + "
            f"{self.completion_tokens:,} completion tokens{priced}"
        )


@dataclass
class Usage:
    """Token and request counts of one client (thread-safe updates)."""

    requests: int = 0
    cached: int = 0
    failures: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to the counters."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def summary(self) -> str:
        """One line: requests, cache hits, new tokens, failures."""
        return (
            f"LLM: {self.requests} requests ({self.cached} cached), "
            f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion tokens new, "
            f"{self.failures} failed, {self.retries} retried"
        )


def _env(*names: str) -> str | None:
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return None


class LLMClient:
    """Chat completions with caching, retries, concurrency and accounting (see module doc)."""

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        concurrency: int = 4,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
    ) -> None:
        self.base_url = base_url or _env("SAETOOLS_LLM_BASE_URL", "OPENAI_BASE_URL")
        self.api_key = api_key or _env("SAETOOLS_LLM_API_KEY", "OPENAI_API_KEY")
        if not self.base_url and not self.api_key:
            raise LLMError(
                "no LLM configured: pass --llm-base-url (e.g. http://127.0.0.1:8008/v1 from "
                "`saetools serve`) or set OPENAI_API_KEY / SAETOOLS_LLM_BASE_URL (docs/llm.md)"
            )
        self._model = model or _env("SAETOOLS_LLM_MODEL")
        if self._model is None and not self.base_url:
            self._model = "gpt-4o-mini"
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.use_cache = use_cache
        cache_dir = cache_dir or _env("SAETOOLS_LLM_CACHE_DIR")
        self.cache_dir = Path(cache_dir) if cache_dir else saetools_home() / "llm-cache"
        self.usage = Usage()
        self._client = None

    @property
    def model(self) -> str:
        """The model name: given, from the environment, or the first one the server lists
        (``default`` if it lists none)."""
        if self._model is None:
            try:
                listed = self.client.models.list()
                self._model = listed.data[0].id if listed.data else "default"
            except Exception:  # noqa: BLE001 - any failure here surfaces on the first request
                self._model = "default"
        return self._model

    @property
    def client(self):
        """The underlying ``openai.OpenAI`` client (its own retries off: this class retries)."""
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(
                base_url=self.base_url,
                api_key=self.api_key or "not-needed",
                timeout=self.timeout,
                max_retries=0,
            )
        return self._client

    def describe(self) -> dict:
        """Endpoint and model, for provenance records."""
        return {"base_url": self.base_url or "https://api.openai.com/v1", "model": self.model}

    def request(
        self,
        messages: Sequence[dict],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> dict:
        """The full request body for ``messages`` (what the cache is keyed on)."""
        return {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
        }

    def cache_key(self, request: dict) -> str:
        """SHA-256 of the endpoint and the request."""
        blob = json.dumps([self.describe()["base_url"], request], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _cache_path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def cached(self, request: dict) -> str | None:
        """The cached reply text of a request, if any."""
        if not self.use_cache:
            return None
        path = self._cache_path(self.cache_key(request))
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())["text"]
        except (OSError, ValueError, KeyError):
            return None

    def _store(self, request: dict, text: str, usage: dict) -> None:
        if not self.use_cache:
            return
        path = self._cache_path(self.cache_key(request))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({"request": request, "text": text, "usage": usage}))
        os.replace(tmp, path)

    def _call(self, request: dict) -> tuple[str, dict]:
        import openai

        transient = (
            openai.APITimeoutError,
            openai.APIConnectionError,
            openai.RateLimitError,
            openai.InternalServerError,
        )
        last = None
        for attempt in range(self.retries + 1):
            try:
                reply = self.client.chat.completions.create(**request)
                text = reply.choices[0].message.content or ""
                usage = reply.usage
                counts = {
                    "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
                    "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
                }
                self.usage.add(**counts)
                return text, counts
            except transient as exc:
                last = exc
            except openai.APIStatusError as exc:  # other 4xx: the request itself is wrong
                if exc.status_code >= 500:
                    last = exc
                else:
                    raise LLMError(
                        f"LLM request refused ({exc.status_code}): {exc.message}"
                    ) from None
            except (IndexError, AttributeError, ValueError) as exc:  # not a chat completion
                last = exc
            if attempt < self.retries:
                self.usage.add(retries=1)
                time.sleep(self.backoff * 2**attempt)
        raise LLMError(f"LLM unavailable after {self.retries + 1} tries: {_describe(last)}")

    def complete(
        self,
        messages: Sequence[dict],
        parse: Callable[[str], Any] | None = None,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> LLMResult:
        """One chat completion. ``parse(text)`` turns the reply into a value or raises
        ``ValueError``; a rejected or failed reply is retried, then returned with ``error``."""
        parse = parse or (lambda text: text)
        request = self.request(messages, max_tokens=max_tokens, temperature=temperature, seed=seed)
        self.usage.add(requests=1)
        error, text, from_cache = None, None, True
        for attempt in range(self.retries + 1):
            # a malformed reply is asked again with another seed and a little temperature;
            # every reply is cached under its own request, so a rerun replays the same attempts
            tries = (
                request
                if attempt == 0
                else {**request, "seed": seed + attempt, "temperature": max(temperature, 0.3)}
            )
            text = self.cached(tries)
            if text is None:
                from_cache = False
                if attempt > 0:
                    self.usage.add(retries=1)
                try:
                    text, counts = self._call(tries)
                except LLMError as exc:
                    error = str(exc)
                    break
                self._store(tries, text, counts)
            try:
                value = parse(text)
            except ValueError as exc:
                error = f"reply not in the requested format: {exc}"
                continue
            if from_cache:
                self.usage.add(cached=1)
            return LLMResult(text, value, from_cache)
        self.usage.add(failures=1, cached=int(from_cache))
        return LLMResult(text, None, from_cache, error)

    def map(
        self,
        jobs: Sequence[dict],
        parse: Callable[[str], Any] | None = None,
        *,
        progress: bool = False,
        desc: str = "LLM",
    ) -> list[LLMResult]:
        """:meth:`complete` over many jobs (each a dict of its arguments: ``messages`` and
        optionally ``max_tokens``, ``temperature``, ``seed``, and its own ``parse``),
        ``concurrency`` at a time, in order. If every job fails for lack of a server, raise
        :class:`LLMError`."""
        from tqdm.auto import tqdm

        def run(job: dict) -> LLMResult:
            options = {k: v for k, v in job.items() if k not in ("messages", "parse")}
            return self.complete(job["messages"], job.get("parse", parse), **options)

        with ThreadPoolExecutor(self.concurrency) as pool:
            results = list(
                tqdm(pool.map(run, jobs), total=len(jobs), desc=desc, disable=not progress)
            )
        if results and all(r.error and "unavailable" in r.error for r in results):
            raise LLMError(results[0].error)
        return results

    def estimate(self, jobs: Sequence[dict]) -> LLMEstimate:
        """Uncached requests among ``jobs`` and their estimated prompt and completion tokens
        (4 characters per token; completion at its ``max_tokens``)."""
        uncached = prompt = completion = 0
        for job in jobs:
            options = {k: v for k, v in job.items() if k not in ("messages", "parse")}
            request = self.request(job["messages"], **options)
            if self.cached(request) is None:
                uncached += 1
                prompt += sum(len(str(m.get("content", ""))) for m in job["messages"]) // 4 + 8
                completion += request["max_tokens"]
        return LLMEstimate(uncached, prompt, completion)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


def client_from_options(
    base_url: str | None = None,
    model: str | None = None,
    *,
    concurrency: int = 4,
    timeout: float = 60.0,
    use_cache: bool = True,
) -> LLMClient:
    """An :class:`LLMClient` from CLI options, falling back to the environment."""
    return LLMClient(base_url, model, concurrency=concurrency, timeout=timeout, use_cache=use_cache)
