"""LLM access: one OpenAI-compatible client (cache, retries, concurrency, token accounting)."""

from .client import LLMClient, LLMError, LLMResult, Usage

__all__ = ["LLMClient", "LLMError", "LLMResult", "Usage"]
