"""Secrets out of the log: URLs lose their credentials, error texts their key-like strings, and what
is not a secret (paths, model ids, method names) reads as before."""

from __future__ import annotations

import pytest

from greenai.shared.scrub import REDACTED, scrub_text, scrub_url

SECRETS = {
    "openai": "Incorrect API key provided: sk-proj-AbCdEf0123456789xyzXYZ. You can find your key",
    "bearer": "request had header Authorization: Bearer abc.DEF-123_456~xyz",
    "assignment": 'settings: api_key="hunter2hunter2", timeout=3',
    "json": '{"access_token": "ya29.a0AfH6SMBx", "ok": true}',
    "url": "GET https://alice:s3cr3t@llm.example.com/v1/chat failed",
    "query": "POST http://h/v1?key=AIzaSyA-1234567890abcdefghijklmnopqrstu&x=1",
    "hf": "401 for token hf_abcdefghijklmnopqrstuvwxyzABCD",
    "github": "remote says ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "aws": "credentials AKIAIOSFODNN7EXAMPLE were refused",
    "jwt": "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "hex": "key 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 rejected",
    "base64": "secret value Zm9vYmFyQmF6UXV4MTIzNDU2Nzg5MGFiY2RlZkdISUpLTE1O",
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_key_like_strings_are_redacted(name: str) -> None:
    text = SECRETS[name]
    clean = scrub_text(text)
    assert REDACTED in clean, clean
    for secret in ("sk-proj-AbCdEf", "hunter2", "s3cr3t", "ya29.a0", "AIzaSy", "hf_abc", "ghp_abc", "AKIAIOSF",
                   "eyJhbGci", "9f86d081884c", "Zm9vYmFy", "DEF-123_456"):  # fmt: skip
        assert secret not in clean, clean


@pytest.mark.parametrize(
    "text",
    [
        "artifact /work/main/build/test-cache/tiny-llama/model.safetensors is empty",
        "could not fetch HuggingFaceTB/SmolLM2-135M-Instruct from the Hugging Face Hub",
        "unknown quantize method 'awqq'; choose one of ['autoround', 'gptq', 'awq']",
        "group size 128 does not divide 576 (SmolLM2's width); use 64",
        "greenai.services.evaluation.benchmarks.user: line 3, field 'answer' is missing",
    ],
)
def test_ordinary_error_texts_pass_unchanged(text: str) -> None:
    assert scrub_text(text) == text


def test_scrubbed_text_is_bounded() -> None:
    assert len(scrub_text("x " * 10_000, 4000)) == 4000


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("http://user:pw@127.0.0.1:8000/v1?api_key=abc&model=x#frag", "http://127.0.0.1:8000/v1?model=x"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("https://h.example/v1?token=t&sig=s&Key=k&access_token=a", "https://h.example/v1"),
        ("http://[::1]:8080/v1?password=p", "http://[::1]:8080/v1"),
        ("https://h/v1/sk-abcdefghijklmnop/chat", f"https://h/v1/{REDACTED}/chat"),
        (None, None),
    ],
)
def test_urls_lose_credentials(url: str | None, clean: str | None) -> None:
    assert scrub_url(url) == clean


def test_an_unparseable_url_is_not_echoed() -> None:
    assert scrub_url("http://[bad:host/v1?key=sk-abcdefghijklmnop") == REDACTED
