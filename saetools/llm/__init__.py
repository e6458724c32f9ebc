"""LLM transport: one OpenAI-compatible client (cache, retries, concurrency, token accounting)
and a local server. The prompts live beside the features that use them."""

from .client import LLMClient, LLMError, LLMEstimate, LLMResult, Usage

__all__ = ["LLMClient", "LLMError", "LLMEstimate", "LLMResult", "Usage"]
