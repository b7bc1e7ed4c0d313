"""Identities and least privilege on the bus: one NATS identity per role, each allowed to publish only
the events its role produces and to consume only its own durable consumer.

Identities are nkeys: the server's configuration holds only public keys, each role holds its seed in a
file of its own (mode 0600). The server enforces the permissions, so a quantization agent cannot
append an `evaluate.completed`, a viewer cannot append anything, and nobody but `admin` can delete,
purge or reconfigure the stream that is the store of record.
"""

from __future__ import annotations

import json
import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenai.events.capabilities import agents_experiment
from greenai.shared.projection_snapshot import BUCKET as PROJECTIONS_BUCKET
from greenai.shared.projection_snapshot import DASHBOARD_BUCKET

ROLES = ("coordinator", "quantization", "pruning", "lora", "distillation", "evaluation", "cli", "viewer", "admin")
_STEP_RESULTS = ("job.started", "job.failed", "event.rejected", "agent.announced")
# Types a role may append only under its own name: an agent announces itself, never another.
SELF_SCOPED = ("agent.announced",)
# The event types each role may append. One table: tests/unit/test_auth.py checks it against the registry.
PRODUCES: dict[str, tuple[str, ...]] = {
    "cli": ("run.requested", "decision.reviewed", "experiment.cancelled"),
    "coordinator": (
        "spec.inferred", "model.staged", "episode.decided", "decision.proposed", "llm.consulted", "policy.fell_back",
        "experiment.completed", "experiment.failed", "quantize.requested", "prune.requested", "lora.requested",
        "evaluate.requested", "event.rejected",
    ),
    "quantization": ("quantize.completed", *_STEP_RESULTS),
    "pruning": ("prune.completed", *_STEP_RESULTS),
    "lora": ("lora.completed", *_STEP_RESULTS),
    "distillation": ("distill.completed", *_STEP_RESULTS),  # = step_agent_types("distill"): a generic step kind
    "evaluation": ("evaluate.completed", *_STEP_RESULTS),
    "viewer": (),
}  # fmt: skip
# Types named above that no event class defines yet (planned by open issues).
PLANNED: tuple[str, ...] = ()
ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


class AuthError(RuntimeError):
    """Credentials missing, unreadable or of the wrong form; the message says which file."""


def step_agent_types(kind: str) -> tuple[str, ...]:
    """What a step agent of `kind` appends: its results, its jobs' lifecycle, its announcements."""
    if not ROLE_NAME.match(kind):
        raise AuthError(f"step kind {kind!r} must be lowercase letters, digits and '_'")
    return (f"{kind}.completed", *_STEP_RESULTS)


def step_kinds_of(produces: tuple[str, ...]) -> list[str]:
    """The job kinds a role serves: one per `<kind>.completed` it may append."""
    return [t.removesuffix(".completed") for t in produces if t.endswith(".completed") and t.count(".") == 1]


def durables_of(role: str, produces: tuple[str, ...] | None = None) -> list[str]:
    """The durable consumers a role may bind to (see shared/runtime.py JobSpec.durable)."""
    if role == "coordinator":
        return ["coordinator"]
    types = PRODUCES.get(role, ()) if produces is None else produces
    return [f"{role}-{kind}-requested" for kind in step_kinds_of(types)]


def writes_artifacts(role: str, produces: tuple[str, ...]) -> bool:
    """The coordinator (it stages base models) and every step agent but evaluation store artifacts."""
    return role == "coordinator" or any(k != "evaluate" for k in step_kinds_of(produces))


def permissions(role: str, stream: str, bucket: str, produces: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The subjects a role may publish to and subscribe on; nothing wider than its work needs."""
    if role == "admin":
        return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}
    api = "$JS.API"
    types = PRODUCES.get(role, ()) if produces is None else produces
    publish = [f"greenai.evt.*.{t}" for t in types if t not in SELF_SCOPED]
    publish += [f"greenai.evt.{agents_experiment(role)}.{t}" for t in types if t in SELF_SCOPED]
    deny: list[str] = []
    if role == "coordinator":  # requests for any step kind an agent announces; never a user's run request
        publish.append("greenai.evt.*.*.requested")
        deny.append("greenai.evt.*.run.requested")
    # reading the log: stream info, ephemeral ordered consumers and their flow control, direct gets
    publish += [
        f"{api}.INFO",
        f"{api}.STREAM.NAMES",  # nats-py finds a subject's stream by name lookup
        f"{api}.STREAM.INFO.{stream}",
        f"{api}.CONSUMER.CREATE.{stream}",
        f"{api}.CONSUMER.INFO.{stream}.*",
        f"{api}.DIRECT.GET.{stream}",
        f"{api}.DIRECT.GET.{stream}.>",
        f"{api}.STREAM.MSG.GET.{stream}",
        f"$JS.FC.{stream}.>",
    ]
    for durable in durables_of(role, types):
        publish += [
            f"{api}.CONSUMER.CREATE.{stream}.{durable}",
            f"{api}.CONSUMER.CREATE.{stream}.{durable}.>",
            f"{api}.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
            f"{api}.CONSUMER.MSG.NEXT.{stream}.{durable}",
            f"$JS.ACK.{stream}.{durable}.>",
        ]
    obj = f"OBJ_{bucket}"
    publish += [f"{api}.STREAM.INFO.{obj}", f"{api}.CONSUMER.CREATE.{obj}", f"{api}.CONSUMER.CREATE.{obj}.>",
                f"{api}.CONSUMER.MSG.NEXT.{obj}.*",
                f"{api}.DIRECT.GET.{obj}", f"{api}.DIRECT.GET.{obj}.>", f"{api}.STREAM.MSG.GET.{obj}",
                f"$JS.FC.{obj}.>"]  # fmt: skip
    if step_kinds_of(types):  # step agents hold their host's lease (shared.host_lease)
        kv = "KV_greenai-hosts"
        publish += ["$KV.greenai-hosts.>", f"{api}.STREAM.INFO.{kv}", f"{api}.DIRECT.GET.{kv}.>",
                    f"{api}.STREAM.MSG.GET.{kv}", f"{api}.CONSUMER.CREATE.{kv}", f"{api}.CONSUMER.CREATE.{kv}.>",
                    f"{api}.CONSUMER.INFO.{kv}.*",
                    f"$JS.FC.{kv}.>"]  # fmt: skip
    if writes_artifacts(role, types):
        publish += [f"$O.{bucket}.C.>", f"$O.{bucket}.M.>"]
    if role == "coordinator":  # the only reader and writer of kept projections' snapshots (replacing purges)
        snap = f"OBJ_{PROJECTIONS_BUCKET}"
        publish += [f"$O.{PROJECTIONS_BUCKET}.C.>", f"$O.{PROJECTIONS_BUCKET}.M.>", f"{api}.STREAM.PURGE.{snap}",
                    f"{api}.STREAM.INFO.{snap}", f"{api}.CONSUMER.CREATE.{snap}", f"{api}.CONSUMER.CREATE.{snap}.>",
                    f"{api}.CONSUMER.INFO.{snap}.*", f"{api}.DIRECT.GET.{snap}", f"{api}.DIRECT.GET.{snap}.>",
                    f"{api}.STREAM.MSG.GET.{snap}", f"$JS.FC.{snap}.>"]  # fmt: skip
    if role == "viewer":  # the dashboard keeps its read models' snapshot in a bucket of its own, and only there
        dash = f"OBJ_{DASHBOARD_BUCKET}"
        publish += [f"$O.{DASHBOARD_BUCKET}.C.>", f"$O.{DASHBOARD_BUCKET}.M.>", f"{api}.STREAM.PURGE.{dash}",
                    f"{api}.STREAM.INFO.{dash}", f"{api}.CONSUMER.CREATE.{dash}", f"{api}.CONSUMER.CREATE.{dash}.>",
                    f"{api}.CONSUMER.INFO.{dash}.*", f"{api}.DIRECT.GET.{dash}", f"{api}.DIRECT.GET.{dash}.>",
                    f"{api}.STREAM.MSG.GET.{dash}", f"$JS.FC.{dash}.>"]  # fmt: skip
    rules: dict[str, Any] = {"allow": publish}
    if deny:
        rules["deny"] = deny
    return {"publish": rules, "subscribe": {"allow": [f"{inbox_prefix(role)}.>"]}}


def inbox_prefix(role: str) -> str:
    """Replies to a role go to inboxes only it may subscribe to."""
    return f"_INBOX_{role}"


@dataclass(frozen=True)
class AuthFiles:
    folder: Path
    server_conf: Path

    def seed(self, role: str) -> Path:
        return self.folder / f"{role}.nk"


def _new_seed() -> bytes:
    import nkeys

    return bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))


def public_key(seed_file: Path) -> str:
    import nkeys

    try:
        kp = nkeys.from_seed(bytearray(seed_file.read_bytes().strip()))
        return str(kp.public_key.decode())
    except (OSError, nkeys.NkeysError, ValueError) as exc:
        raise AuthError(f"{seed_file}: not a readable nkey seed ({exc})") from exc


def init_auth(
    folder: Path,
    *,
    rotate: bool = False,
    stream: str = "GREENAI_EVENTS",
    bucket: str = "greenai-artifacts",
    extra_roles: dict[str, tuple[str, ...]] | None = None,
) -> AuthFiles:
    """Write one seed per role (kept unless `rotate`) and the server's authorization block."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    files = AuthFiles(folder, folder / "server-auth.conf")
    roles: dict[str, tuple[str, ...] | None] = {r: None for r in ROLES}
    roles.update(_load_extra(folder))
    roles.update(extra_roles or {})
    _save_extra(folder, {r: t for r, t in roles.items() if r not in ROLES and t is not None})
    users = []
    for role, produces in roles.items():
        seed = files.seed(role)
        if rotate or not seed.exists():
            fd = os.open(seed, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(_new_seed())
        os.chmod(seed, 0o600)
        users.append({"nkey": public_key(seed), "permissions": permissions(role, stream, bucket, produces)})
    # NATS configuration accepts JSON values: the block is written as JSON so no quoting can go wrong
    block = "authorization {\n  users = " + json.dumps(users, indent=2) + "\n}\n"
    files.server_conf.write_text(block, encoding="utf-8")
    os.chmod(files.server_conf, 0o600)
    return files


def add_role(folder: Path, role: str, produces: tuple[str, ...], **kw: Any) -> AuthFiles:
    """A new kind of step agent: its own identity, publishing only the types given."""
    if not ROLE_NAME.match(role) or role in ROLES:
        raise AuthError(f"role name {role!r} must be lowercase letters, digits and '_', and not a built-in role")
    bad = [t for t in produces if not re.match(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", t)]
    if bad:
        raise AuthError(f"not event types: {bad}")
    return init_auth(folder, extra_roles={role: produces}, **kw)


def _load_extra(folder: Path) -> dict[str, tuple[str, ...] | None]:
    path = folder / "roles.json"
    if not path.exists():
        return {}
    return {r: tuple(t) for r, t in json.loads(path.read_text(encoding="utf-8")).items()}


def _save_extra(folder: Path, extra: dict[str, tuple[str, ...]]) -> None:
    if extra:
        (folder / "roles.json").write_text(json.dumps({r: list(t) for r, t in extra.items()}, indent=2))


def role_of(seed_file: Path) -> str:
    return seed_file.name.removesuffix(".nk")


def client_options(credentials: Path | None, tls_ca: Path | None = None) -> dict[str, Any]:
    """Keyword arguments for `nats.connect`: the role's seed and inbox prefix, and TLS when a CA is set."""
    options: dict[str, Any] = {}
    if credentials is not None:
        if not credentials.is_file():
            raise AuthError(f"credentials file {credentials} does not exist (run `greenai auth init`)")
        if credentials.stat().st_mode & 0o077:
            raise AuthError(f"credentials file {credentials} is readable by others: chmod 600 it")
        options["nkeys_seed"] = str(credentials)
        options["inbox_prefix"] = inbox_prefix(role_of(credentials))
    if tls_ca is not None:
        context = ssl.create_default_context(cafile=str(tls_ca))
        options["tls"] = context
    return options


def credentials_for(auth_dir: Path, role: str) -> Path | None:
    """The seed of `role` in a `greenai auth init` folder, if there is one."""
    seed = auth_dir / f"{role}.nk"
    return seed if seed.is_file() else None
