"""Language-model clients: an OpenAI-compatible HTTP endpoint and a local transformers model.

Both implement :class:`LLMClient`: a ``model_id``, the sampling ``settings`` (part of the
answer cache key) and ``complete(messages) -> str``. Any other backend only needs those.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cbm.exceptions import CBMError, ConfigurationError


class LLMError(CBMError, RuntimeError):
    """A language model request failed (after retries) or returned something unusable."""


Messages = list[dict[str, str]]


@runtime_checkable
class LLMClient(Protocol):
    """What concept generation needs from a language model."""

    model_id: str

    def settings(self) -> dict[str, Any]:
        """Sampling settings that change the answer (temperature, max tokens, seed...)."""
        ...

    def complete(self, messages: Messages) -> str:
        """The model's answer to a chat (system + user messages)."""
        ...


_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIChatClient:
    """Any server speaking OpenAI's chat-completions protocol (OpenAI, vLLM, Ollama, llama.cpp).

    Parameters
    ----------
    model
        Model name as the server knows it.
    base_url
        E.g. ``"http://localhost:8000/v1"``; defaults to ``$CBM_LLM_BASE_URL``, then
        ``$OPENAI_BASE_URL``, then ``https://api.openai.com/v1``.
    api_key_env
        Name of the environment variable holding the key (never the key itself, so it
        never lands in a bank's provenance or a cache file).
    temperature, max_tokens, seed
        Sampling settings sent with every request.
    timeout
        Seconds to wait for each request.
    max_retries
        Retries on connection errors, timeouts, 429, 5xx and bodies that are not a chat
        completion, with exponential back-off (honouring ``Retry-After``).
    backoff
        First back-off in seconds; doubles each retry, with jitter.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        temperature: float = 0.0,
        max_tokens: int = 400,
        seed: int | None = 0,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not model:
            raise ConfigurationError("give the model name the server expects, e.g. 'llama3.1'")
        self.model = model
        self.base_url = (
            base_url
            or os.environ.get("CBM_LLM_BASE_URL")
            or os.environ.get("OPENAI_BASE_URL")
            or "https://api.openai.com/v1"
        ).rstrip("/")
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self._sleep = sleep
        self.model_id = f"openai-chat:{self.base_url}/{model}"

    def settings(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed}

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * (2**attempt) * (1 + 0.25 * random.random())
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        self._sleep(min(delay, 120.0))

    def complete(self, messages: Messages) -> str:
        import requests

        body: dict[str, Any] = {"model": self.model, "messages": messages, **self.settings()}
        if self.seed is None:
            body.pop("seed")
        url = f"{self.base_url}/chat/completions"
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                resp = requests.post(url, json=body, headers=self._headers(), timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as err:
                last = f"{type(err).__name__}: {err}"
                if attempt < self.max_retries:
                    self._wait(attempt, None)
                continue
            if resp.status_code in _RETRY_STATUS:
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                if attempt < self.max_retries:
                    self._wait(attempt, resp.headers.get("Retry-After"))
                continue
            if resp.status_code != 200:
                raise LLMError(
                    f"{url} answered HTTP {resp.status_code}: {resp.text[:300]} "
                    f"(check the model name, the base URL and ${self.api_key_env})"
                )
            try:
                return _content(resp.text, url)
            except LLMError as err:  # a proxy's error page with status 200: worth a retry
                last = str(err)
                if attempt < self.max_retries:
                    self._wait(attempt, None)
        raise LLMError(f"{url} failed after {self.max_retries + 1} attempts; last error: {last}")


def _content(text: str, url: str) -> str:
    try:
        data = json.loads(text)
        content = data["choices"][0]["message"]["content"]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError) as err:
        raise LLMError(
            f"{url} returned a body that is not a chat completion ({err!r}): {text[:200]!r}"
        ) from err
    if not isinstance(content, str):
        raise LLMError(f"{url} returned non-text content: {content!r}")
    return content


class TransformersClient:
    """A local causal language model loaded with Hugging Face ``transformers``.

    Parameters
    ----------
    model_path
        A local model directory (or a hub name if your machine can download it).
    max_new_tokens
        Answer length limit.
    temperature
        0 means greedy decoding (reproducible); above 0 samples with ``seed``.
    seed
        Torch seed set before each generation.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    gguf_file
        Optional GGUF file name inside ``model_path`` (needs the ``gguf`` package).
    """

    def __init__(
        self,
        model_path: str | Path,
        max_new_tokens: int = 200,
        temperature: float = 0.0,
        seed: int = 0,
        device: str = "auto",
        gguf_file: str | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from cbm.backbones.base import resolve_device

        self.model_path = str(model_path)
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.device = resolve_device(device)
        extra: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, **extra)
            self.model = AutoModelForCausalLM.from_pretrained(self.model_path, **extra)
        except OSError as err:
            raise ConfigurationError(
                f"cannot load a causal language model from {self.model_path!r}: {err}"
            ) from err
        self.model.to(self.device).eval()
        self.model_id = f"transformers:{self.model_path}@{_weights_digest(self.model_path)}"

    def settings(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed,
        }

    def _prompt(self, messages: Messages) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            return str(text)
        # base models without a chat template: plain text with the instruction first
        return "\n\n".join(m["content"] for m in messages) + "\n\n1."

    def complete(self, messages: Messages) -> str:
        import torch

        prompt = self._prompt(messages)
        inputs = self.tokenizer(prompt, return_tensors="pt").to(self.device)
        torch.manual_seed(self.seed)
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens}
        if self.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.temperature)
        else:
            kwargs.update(do_sample=False)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        with torch.inference_mode():
            out = self.model.generate(**inputs, pad_token_id=pad, **kwargs)
        new = out[0, inputs["input_ids"].shape[1] :]
        answer = str(self.tokenizer.decode(new, skip_special_tokens=True))
        return answer if getattr(self.tokenizer, "chat_template", None) else "1." + answer


def _weights_digest(model_path: str) -> str:
    """Identity of a local model's weights: hash of its config plus weight file sizes."""
    p = Path(model_path)
    if not p.is_dir():
        return "hub"
    h = hashlib.sha256()
    for f in sorted(p.iterdir()):
        if f.is_file():
            if f.suffix == ".json":
                h.update(f.read_bytes())
            h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()[:12]
