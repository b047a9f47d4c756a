"""config.py — the sandbox configurations the three providers accept.

Drop-in with the sandboxes they replace:
  sbx-local  nothing, a values.yaml / compose.yaml path (one agent per service, like
             `sbx up -f`), or a LocalConfig / dict with `values`, `runtime`, `memory`, `pids`,
             `cpus`, `rootfs`, `host`, `agent` (every service in its own container).
  sbx-k8s    what the k8s sandbox accepts: a values or compose file path, or a config
             with chart, values, context, default_user, restarted_container_behavior.
  sbx-ec2    the EC2 sandbox's config fields, with INSPECT_EC2_SANDBOX_* environment
             variables filling what the config leaves out.
Bad input raises ValueError naming the file or field and the fix.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from typing import Any

SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
VALUES_NAMES = ("values.yaml", "values.yml", "helm-values.yaml")


def services_from_file(path: str) -> list[str]:
    """Service names of a values.yaml or compose.yaml (`services:` mapping), the default
    service first: the one named `default`, else the one with `x-default: true`, else the
    first. The same rule as `sbx up -f` (host/cli/services.c)."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - the machine's Python ships PyYAML
        raise ValueError(f"{path}: reading it needs PyYAML (apt-get install python3-yaml)") from None
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise ValueError(f"cannot open {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ValueError(f"{path}{where}: invalid YAML: {getattr(e, 'problem', None) or e}") from None
    svcs = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(svcs, dict) or not svcs:
        raise ValueError(f"{path}: no 'services:' mapping with at least one service")
    names: list[str] = []
    default = None
    for name, spec in svcs.items():
        if not isinstance(name, str) or not SERVICE_NAME.match(name):
            raise ValueError(f"{path}: service name {name!r} must be lowercase letters, digits and '-'")
        if name == "default" or (default is None and isinstance(spec, dict) and spec.get("x-default") is True):
            default = name
        names.append(name)
    if default is not None:
        names.remove(default)
        names.insert(0, default)
    return names


def _from_mapping(cls: type, data: Any, what: str) -> Any:
    if isinstance(data, cls):
        return data
    if hasattr(data, "model_dump"):  # a pydantic model (Inspect's config objects)
        data = data.model_dump()
    if not isinstance(data, dict):
        raise ValueError(f"{what}: expected a file path or a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{what}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return cls(**data)


# ---------------------------------------------------------------- local


@dataclass
class LocalConfig:
    """Every service runs in its own OCI container (docs/SECURITY.md) unless `host` is set.
    memory: bytes or a size like "512m", "4g" (0: no limit); pids: 0 is no limit; cpus: a
    hard quota in CPUs (0: none, a 0.5 CPU share). isolate=False is the old plain-process
    mode, the same as host=True."""

    values: str | None = None    # values.yaml / compose.yaml: one agent per service
    isolate: bool | None = None  # False: host=True (kept for old configs); True/None: contained
    agent: str | None = None     # the sbx-agent binary (default: $SBX_AGENT, libsbx's default)
    runtime: str | None = None   # "crun", "runc", "runsc" (gVisor); None: $SBX_RUNTIME, else auto
    rootfs: str | None = None    # an unpacked image to run on; None: the host's OS, read-only
    memory: int | str | None = None  # default 2 GiB
    pids: int | None = None      # default 1024
    cpus: float | None = None    # default: a 0.5 CPU share, no quota
    host: bool = False           # UNSAFE: no container; the code gets this machine

    def __post_init__(self) -> None:
        if self.isolate is False:
            self.host = True
        if self.runtime not in (None, "auto", "crun", "runc", "runsc"):
            raise ValueError(f"sbx-local config: runtime must be crun, runc or runsc, not {self.runtime!r}")
        self.memory_bytes()  # a bad size fails here, naming the field
        for name in ("pids", "cpus"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0):
                raise ValueError(f"sbx-local config: {name} must be a number >= 0 (0: no limit), not {v!r}")

    def services(self) -> list[str]:
        return services_from_file(self.values) if self.values else ["default"]

    def memory_bytes(self) -> int:
        """The memory limit as libsbx takes it: 0 default, 2**64-1 none."""
        m = self.memory
        if m is None:
            return 0
        if isinstance(m, str):
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*", m.lower())
            if not match:
                raise ValueError(f"sbx-local config: memory {m!r}: give bytes or a size like '512m' or '4g'")
            m = int(float(match.group(1)) * 1024 ** "bkmgt".index(match.group(2) or "b"))
        if not isinstance(m, int) or isinstance(m, bool) or m < 0:
            raise ValueError(f"sbx-local config: memory must be bytes or a size like '512m', not {self.memory!r}")
        return m if m else (1 << 64) - 1

    def box_options(self) -> dict[str, Any]:
        """Keyword arguments of _sbx.session_box."""
        return {"agent": self.agent, "runtime": self.runtime, "rootfs": self.rootfs,
                "memory": self.memory_bytes(), "pids": -1 if self.pids == 0 else int(self.pids or 0),
                "cpus": -1.0 if self.cpus == 0 else float(self.cpus or 0)}


def local_config(config: Any) -> LocalConfig:
    if config is None:
        return LocalConfig()
    if isinstance(config, str):
        return LocalConfig(values=config)
    return _from_mapping(LocalConfig, config, "sbx-local config")


# ---------------------------------------------------------------- k8s


@dataclass
class K8sConfig:
    chart: str | None = None
    values: str | None = None
    context: str | None = None
    default_user: str | None = None
    restarted_container_behavior: str = "warn"
    transport: str = "websocket"  # or "kubectl": `kubectl exec -i`, the fallback transport

    def __post_init__(self) -> None:
        if self.restarted_container_behavior not in ("warn", "raise"):
            raise ValueError("sbx-k8s config: restarted_container_behavior must be 'warn' or 'raise', "
                             f"not {self.restarted_container_behavior!r}")
        if self.transport not in ("websocket", "kubectl"):
            raise ValueError("sbx-k8s config: transport must be 'websocket' (the default) or 'kubectl', "
                             f"not {self.transport!r}")


def k8s_config(config: Any) -> K8sConfig:
    if config is None:
        return K8sConfig()
    if isinstance(config, str):
        return K8sConfig(values=config)
    return _from_mapping(K8sConfig, config, "sbx-k8s config")


# ---------------------------------------------------------------- ec2


@dataclass
class Ec2Config:
    """The EC2 sandbox's config object fields (Ec2SandboxEnvironmentConfig.from_settings);
    extra_tags as ((k, v), ...) like there, or a dict. Fields left unset come from
    INSPECT_EC2_SANDBOX_<FIELD> (extra tags: INSPECT_EC2_SANDBOX_EXTRA_TAGS_STR='k1=v1;k2=v2');
    libsbx applies the rest (AWS_REGION fallback, .env, defaults, the timeouts)."""

    region: str | None = None
    vpc_id: str | None = None
    security_group_id: str | None = None
    subnet_id: str | None = None
    instance_profile: str | None = None
    s3_bucket: str | None = None
    s3_key_prefix: str | None = None
    ami_id: str | None = None
    instance_type: str | None = None
    extra_tags: dict[str, str] = field(default_factory=dict)
    # sbx's own: commands may reach the instance metadata service (and so the instance
    # role's credentials). None: INSPECT_EC2_SANDBOX_ALLOW_METADATA, else blocked.
    allow_metadata: bool | None = None

    def __post_init__(self) -> None:
        tags = self.extra_tags
        if tags is None:
            self.extra_tags = {}
        elif not isinstance(tags, dict):
            try:
                self.extra_tags = {str(k): str(v) for k, v in tags}
            except (TypeError, ValueError):
                raise ValueError(f"sbx-ec2 config: extra_tags must be ((key, value), ...) or a dict, not {tags!r}") \
                    from None

    def with_env(self, environ: dict[str, str] | None = None) -> "Ec2Config":
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(self):
            cur = getattr(self, f.name)
            if f.name == "extra_tags":
                raw = env.get("INSPECT_EC2_SANDBOX_EXTRA_TAGS_STR")
                tags = dict(_parse_tags(raw)) if raw else {}
                tags.update(cur or {})
                values[f.name] = tags
            elif f.name == "allow_metadata":
                values[f.name] = cur  # libsbx reads INSPECT_EC2_SANDBOX_ALLOW_METADATA (true/false)
            else:
                raw = env.get("INSPECT_EC2_SANDBOX_" + f.name.upper())
                values[f.name] = cur if cur is not None else raw
        return Ec2Config(**values)

    def missing(self) -> list[str]:
        return [n for n in ("region", "vpc_id", "security_group_id", "subnet_id", "instance_profile", "s3_bucket")
                if not getattr(self, n)]

    def settings(self) -> dict:
        """For the extension (_sbx.ec2_up / ec2_cleanup)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra_tags"}
        d["extra_tags"] = list(self.extra_tags.items())
        return d


def _parse_tags(raw: str) -> list[tuple[str, str]]:
    """'k1=v1;k2=v2' as the EC2 sandbox splits it: ';'-separated, each exactly one '='."""
    out = []
    for part in raw.split(";"):
        if part.count("=") != 1:
            raise ValueError(f"INSPECT_EC2_SANDBOX_EXTRA_TAGS_STR: {part!r} is not KEY=VALUE (use k1=v1;k2=v2)")
        k, v = part.split("=")
        out.append((k, v))
    return out


def ec2_config(config: Any, environ: dict[str, str] | None = None) -> Ec2Config:
    base = Ec2Config() if config is None else _from_mapping(Ec2Config, config, "sbx-ec2 config")
    return base.with_env(environ)
