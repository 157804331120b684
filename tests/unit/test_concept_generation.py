"""Concept generation end to end over real HTTP against a local chat-completions stub."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cbm.concepts.generate import generate_concepts
from cbm.concepts.llm import LLMError, OpenAIChatClient
from cbm.concepts.templates import get_template

ANSWERS = {
    "airplane": "Here are the features:\n1. Wings\n2. Jet engines\n3. A tail fin.\n4. wings",
    "cat": '```json\n["whiskers", "pointed ears", "fur"]\n```',
}


class _Stub(BaseHTTPRequestHandler):
    """Speaks enough of POST /v1/chat/completions; misbehaves on purpose for some classes."""

    calls: dict[str, int] = {}
    bodies: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.bodies.append(body)
        if self.path != "/v1/chat/completions":
            self._send(404, "no such route")
            return
        user = body["messages"][-1]["content"]
        cls = user.split('"')[1]
        n = _Stub.calls[cls] = _Stub.calls.get(cls, 0) + 1
        if cls == "rate limited" and n == 1:
            self._send(429, "slow down", {"Retry-After": "0"})
            return
        if cls == "slow" and n == 1:
            time.sleep(1.0)  # longer than the client's timeout
        if cls == "broken":
            self._send(200, "<html>gateway error</html>")
            return
        content = "" if cls == "empty" else ANSWERS.get(cls, f"- {cls} part\n- {cls} colour")
        reply = {"choices": [{"message": {"role": "assistant", "content": content}}]}
        self._send(200, json.dumps(reply), {"Content-Type": "application/json"})


@pytest.fixture()
def server() -> Iterator[str]:
    _Stub.calls = {}
    _Stub.bodies = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def _client(url: str, **kw: Any) -> OpenAIChatClient:
    return OpenAIChatClient(
        "stub-model", base_url=url, timeout=0.4, max_retries=2, sleep=lambda s: None, **kw
    )


def test_generates_a_bank_over_http_with_retries_skips_and_cache(server: str, tmp_path) -> None:
    classes = ["airplane", "cat", "rate limited", "slow", "broken", "empty"]
    with pytest.warns(UserWarning, match="2 of 6 requests gave no concepts"):
        result = generate_concepts(
            classes, _client(server), templates=["important"], cache_dir=tmp_path, progress=False
        )
    by_class = result.concepts_by_class()
    assert by_class["airplane"] == ["wings", "jet engines", "a tail fin"]
    assert by_class["cat"] == ["whiskers", "pointed ears", "fur"]
    assert by_class["rate limited"] == ["rate limited part", "rate limited colour"]
    assert by_class["slow"] == ["slow part", "slow colour"]  # timed out once, then retried
    assert {f["class"] for f in result.failures} == {"broken", "empty"}
    assert "not a chat completion" in next(
        f["reason"] for f in result.failures if f["class"] == "broken"
    )
    assert _Stub.calls["rate limited"] == 2 and _Stub.calls["broken"] == 3
    sent = _Stub.bodies[0]
    assert sent["model"] == "stub-model" and sent["temperature"] == 0.0
    assert sent["messages"][0]["role"] == "system"

    bank = result.to_bank("mine")
    assert bank.provenance["model"].endswith("/stub-model")
    assert bank.provenance["templates"][0]["name"] == "important"
    assert bank.provenance["concept_classes"]["wings"] == ["airplane"]
    assert set(bank.groups) == {"feature"}

    # a re-run sends only the request that never got an answer, and rebuilds the same bank
    before = dict(_Stub.calls)
    with pytest.warns(UserWarning):
        again = generate_concepts(
            classes, _client(server), templates=["important"], cache_dir=tmp_path, progress=False
        )
    assert {k: v - before.get(k, 0) for k, v in _Stub.calls.items() if v != before.get(k)} == {
        "broken": 3
    }
    assert again.cache_hits == 5 and again.requests_sent == 0
    assert again.to_bank("mine").concepts == bank.concepts


def test_answers_received_before_a_crash_are_kept(server: str, tmp_path) -> None:
    class Crashing(OpenAIChatClient):
        def complete(self, messages: list[dict[str, str]]) -> str:
            if "dog" in messages[-1]["content"]:
                raise KeyboardInterrupt  # the user pressed Ctrl-C, or the machine died
            return super().complete(messages)

    classes = ["airplane", "cat", "dog", "frog"]
    crashing = Crashing("stub-model", base_url=server, sleep=lambda s: None)
    with pytest.raises(KeyboardInterrupt):
        generate_concepts(classes, crashing, templates=["important"], cache_dir=tmp_path)
    assert _Stub.calls == {"airplane": 1, "cat": 1}
    result = generate_concepts(
        classes, _client(server), templates=["important"], cache_dir=tmp_path, progress=False
    )
    assert result.cache_hits == 2 and result.requests_sent == 2
    assert _Stub.calls == {"airplane": 1, "cat": 1, "dog": 1, "frog": 1}


def test_settings_and_template_version_are_part_of_the_cache_key(server: str, tmp_path) -> None:
    generate_concepts(["cat"], _client(server), ["important"], cache_dir=tmp_path, progress=False)
    generate_concepts(
        ["cat"], _client(server, temperature=0.7), ["important"], tmp_path, progress=False
    )
    edited = get_template("important")
    edited = type(edited)(**{**edited.__dict__, "user": edited.user + " Be brief."})
    generate_concepts(["cat"], _client(server), [edited], cache_dir=tmp_path, progress=False)
    assert _Stub.calls["cat"] == 3


def test_http_errors_that_retrying_cannot_fix_say_what_to_check(server: str) -> None:
    client = _client(server.removesuffix("/v1") + "/wrong")
    with pytest.raises(LLMError, match="HTTP 404.*check the model name, the base URL"):
        client.complete([{"role": "user", "content": 'about "cat"'}])


def test_unreachable_server_fails_after_retries(tmp_path) -> None:
    client = OpenAIChatClient(
        "m", base_url="http://127.0.0.1:9/v1", timeout=0.2, max_retries=1, sleep=lambda s: None
    )
    with pytest.raises(LLMError, match="failed after 2 attempts"):
        client.complete([{"role": "user", "content": "x"}])


def test_key_is_read_from_the_environment_not_stored(server: str, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MY_LLM_KEY", "secret-123")
    client = _client(server, api_key_env="MY_LLM_KEY")
    assert client._headers()["Authorization"] == "Bearer secret-123"
    generate_concepts(["cat"], client, ["important"], cache_dir=tmp_path, progress=False)
    stored = "".join(p.read_text() for p in tmp_path.rglob("*.json"))
    assert "secret-123" not in stored and "cat" in stored


def test_cli_generate_then_show(server: str, tmp_path) -> None:
    from typer.testing import CliRunner

    from cbm.cli import app

    classes = tmp_path / "classes.txt"
    classes.write_text("airplane\ncat\n")
    out = tmp_path / "bank.json"
    runner = CliRunner()
    args = ["concepts", "generate", str(classes), "--model", "stub-model", "--base-url", server]
    args += ["--template", "important", "--cache-dir", str(tmp_path / "c"), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "2 requests sent" in result.output
    shown = runner.invoke(app, ["concepts", "show", str(out)])
    assert shown.exit_code == 0 and "jet engines" in shown.output and "airplane" in shown.output
    missing = runner.invoke(app, ["concepts", "generate", str(tmp_path / "nope.txt")])
    assert missing.exit_code == 1 and "one class name per line" in missing.output
