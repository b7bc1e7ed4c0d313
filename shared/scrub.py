"""Keeping secrets out of the log: URLs without credentials, error texts without key-like strings.

Events are immutable and replicated; a key that reaches one is there for good. So every text that
comes from outside (a provider's error, a configured URL) passes through here before it goes into
an event. The patterns err on the side of redacting: a hash in an error message is worth less than
a key that looked like one.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"
# query parameters and `name=value` pairs whose value is a credential
_KEY_NAMES = (
    r"api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|auth[_-]?token|id[_-]?token|token|secret|"
    r"client[_-]?secret|password|passwd|pwd|signature|sig|x-api-key|key|credentials?|session"
)
_KEY_NAME_RE = re.compile(rf"^(?:{_KEY_NAMES})$", re.IGNORECASE)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:pass@host
    (re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@"), rf"\g<scheme>{REDACTED}@"),
    # Authorization headers
    (re.compile(r"\b(?P<kind>Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE), rf"\g<kind> {REDACTED}"),
    # name=value, name: value, "name": "value"
    (
        re.compile(
            rf"(?P<name>\b(?:{_KEY_NAMES})\b)(?P<sep>[\"']?\s*[=:]\s*[\"']?)(?P<value>[^\s\"'&,;}}]{{4,}})",
            re.IGNORECASE,
        ),
        rf"\g<name>\g<sep>{REDACTED}",
    ),
    # provider key formats: OpenAI / Anthropic sk-..., GitHub, Slack, AWS, Hugging Face, Google
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), REDACTED),
    (re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{16,}"), REDACTED),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), REDACTED),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), REDACTED),
    (re.compile(r"\bhf_[A-Za-z0-9]{20,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), REDACTED),
    # JSON web tokens
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), REDACTED),
    # long hex (a hex key or a digest: both redacted)
    (re.compile(r"\b[0-9a-fA-F]{32,}\b"), REDACTED),
)
_TOKEN_RE = re.compile(r"[A-Za-z0-9+/_=-]{32,}")


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _looks_random(token: str) -> bool:
    """A long base64-like run with digits, both cases and high entropy; paths and model names are not."""
    core = token.strip("=")
    if "/" in core and all(len(part) < 24 for part in core.split("/")):
        return False  # a path of short words
    has = (any(c.isdigit() for c in core), any(c.islower() for c in core), any(c.isupper() for c in core))
    return all(has) and _entropy(core) >= 4.0


def scrub_text(text: str, limit: int | None = None) -> str:
    """`text` with key-like strings replaced by [redacted], then cut to `limit` characters."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    text = _TOKEN_RE.sub(lambda m: REDACTED if _looks_random(m.group()) else m.group(), text)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text


def scrub_url(url: str | None) -> str | None:
    """A URL fit for the log: no user:password, no key-like query parameters, no fragment."""
    if url is None:
        return None
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return REDACTED
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _KEY_NAME_RE.match(k)])
    clean = urlunsplit((parts.scheme, host + port, parts.path, query, ""))
    return scrub_text(clean)
