"""Read a config directory into one validated `MeshDefinition`.

Every problem is reported as `file: path.inside.file: what is wrong (expected ...)`, and all of
them at once, so an operator fixes a broken deployment in one pass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from meshgate.catalog.config import (
    ConfigFile,
    DomainConfig,
    MeshConfig,
    MeshPolicyConfig,
    PolicyConfig,
    ProductConfig,
    RoleConfig,
    ServerConfig,
    SourceConfig,
    UserConfig,
)
from meshgate.catalog.identity import trusted_keys
from meshgate.errors import ConfigError

# `${NAME}`, or `${NAME:-fallback}` (the fallback is used when NAME is unset).
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# A secret's value must be exactly `${NAME}`: no inline fallback either.
SECRET_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
# Keys whose value is a secret: the file may hold only a `${VAR}` reference to it.
SECRET_KEYS = (("server", "jwt", "key"),)


@dataclass(frozen=True)
class MeshDefinition:
    """Everything a deployment declares, merged from its files and cross-checked."""

    directory: Path
    mesh: MeshConfig
    server: ServerConfig
    sources: dict[str, SourceConfig]
    domains: dict[str, DomainConfig]
    products: dict[tuple[str, str], ProductConfig]
    users: dict[str, UserConfig]
    roles: dict[str, RoleConfig]
    origin: dict[str, Path] = field(default_factory=dict)
    policies: dict[tuple[str, str], PolicyConfig] = field(default_factory=dict)
    mesh_policies: dict[str, MeshPolicyConfig] = field(default_factory=dict)


def load_mesh(
    directory: Path, *, known_source_kinds: frozenset[str] | None = None
) -> MeshDefinition:
    """Load and validate every `*.yaml` file below `directory`."""
    directory = directory.resolve()
    if not directory.is_dir():
        raise ConfigError(
            f"config directory {directory} does not exist; pass --config DIR pointing at a "
            "directory of YAML files (see config/demo for an example)"
        )
    files = sorted(p for p in directory.rglob("*") if p.suffix in {".yaml", ".yml"})
    if not files:
        raise ConfigError(f"config directory {directory} holds no .yaml files")
    problems: list[str] = []
    parsed: list[tuple[Path, ConfigFile]] = []
    for path in files:
        config = _read_file(path, directory, problems)
        if config is not None:
            parsed.append((path, config))
    if problems:
        raise ConfigError(_summary(problems))
    definition = _merge(directory, parsed, problems)
    _cross_check(definition, problems, known_source_kinds)
    if problems:
        raise ConfigError(_summary(problems))
    return definition


def _summary(problems: list[str]) -> str:
    return "invalid configuration:\n  " + "\n  ".join(problems)


def _read_file(path: Path, root: Path, problems: list[str]) -> ConfigFile | None:
    label = str(path.relative_to(root.parent)) if path.is_relative_to(root.parent) else str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        problems.append(f"{label}: not valid YAML: {exc}")
        return None
    if raw is None:
        return ConfigFile()
    if not isinstance(raw, dict):
        problems.append(
            f"{label}: expected a mapping of sections (sources, domains, ...) at top level"
        )
        return None
    _check_secret_references(raw, label, problems)
    substituted = _substitute_env(raw, label, "", problems)
    try:
        return ConfigFile.model_validate(substituted)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown key; check its spelling against the documented config format"
            elif error["type"] == "missing":
                message = "required key is missing"
            problems.append(f"{label}: {where}: {message}")
        return None


def _check_secret_references(raw: dict[str, Any], label: str, problems: list[str]) -> None:
    """A config file is shared and versioned: a secret in it must be an `${ENV}` reference."""
    for path in SECRET_KEYS:
        node: Any = raw
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None and not (isinstance(node, str) and SECRET_REFERENCE.fullmatch(node)):
            problems.append(
                f"{label}: {'.'.join(path)}: must be an environment reference such as "
                '"${JWT_KEY}", never the key itself (a public key may also be a `key_file`)'
            )


def _substitute_env(value: Any, label: str, where: str, problems: list[str]) -> Any:
    """Replace `${VAR}` in strings; an undefined variable is an error, never an empty string."""
    if isinstance(value, dict):
        return {
            k: _substitute_env(v, label, f"{where}.{k}" if where else str(k), problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_substitute_env(v, label, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, fallback = match.group(1), match.group(2)
            if name not in os.environ and fallback is not None:
                return fallback
            if name not in os.environ:
                problems.append(
                    f"{label}: {where}: environment variable ${{{name}}} is not set; "
                    "export it before starting meshgate"
                )
                return ""
            return os.environ[name]

        return ENV_REFERENCE.sub(replace, value)
    return value


def _merge(
    root: Path, parsed: list[tuple[Path, ConfigFile]], problems: list[str]
) -> MeshDefinition:
    mesh: MeshConfig | None = None
    server: ServerConfig | None = None
    sources: dict[str, SourceConfig] = {}
    domains: dict[str, DomainConfig] = {}
    products: dict[tuple[str, str], ProductConfig] = {}
    users: dict[str, UserConfig] = {}
    roles: dict[str, RoleConfig] = {}
    policies: dict[tuple[str, str], PolicyConfig] = {}
    mesh_policies: dict[str, MeshPolicyConfig] = {}
    origin: dict[str, Path] = {}

    def put(table: dict[Any, Any], key: Any, value: Any, what: str, path: Path) -> None:
        label = f"{what} {key if isinstance(key, str) else '.'.join(key)}"
        if key in table:
            problems.append(
                f"{path.name}: {label} is declared twice (also in {origin[label].name})"
            )
            return
        table[key] = value
        origin[label] = path

    for path, config in parsed:
        if config.mesh is not None:
            if mesh is not None:
                problems.append(f"{path.name}: `mesh:` is declared in more than one file")
            mesh = config.mesh
        if config.server is not None:
            server = config.server
            origin["server"] = path
        for source in config.sources:
            put(sources, source.name, source, "source", path)
        for domain in config.domains:
            put(domains, domain.name, domain, "domain", path)
        for product in config.products:
            put(products, (product.domain, product.name), product, "product", path)
        for user in config.users:
            put(users, user.name, user, "user", path)
        for role in config.roles:
            put(roles, role.name, role, "role", path)
        for policy in config.policies:
            put(policies, (policy.product, policy.role), policy, "policy", path)
        for rule in config.mesh_policies:
            put(mesh_policies, rule.name, rule, "mesh policy", path)
    if mesh is None:
        problems.append(f"{root}: no file declares `mesh:` (name: <catalog name>)")
        mesh = MeshConfig(name="mesh")
    return MeshDefinition(
        root, mesh, server or ServerConfig(), sources, domains, products, users, roles, origin,
        policies, mesh_policies,
    )  # fmt: skip


def _cross_check(d: MeshDefinition, problems: list[str], kinds: frozenset[str] | None) -> None:
    def at(label: str) -> str:
        path = d.origin.get(label)
        return path.name if path else str(d.directory)

    if d.server.jwt is not None:
        try:
            trusted_keys(d.server.jwt, d.directory)
        except ConfigError as exc:
            problems.append(f"{at('server')}: {exc.message}")
    for name, source in d.sources.items():
        if kinds is not None and source.kind not in kinds:
            problems.append(
                f"{at(f'source {name}')}: sources.{name}.kind: "
                f"unknown source kind {source.kind!r}; installed kinds: {', '.join(sorted(kinds))}"
            )
    for name in d.domains:
        if name == "meshgate":
            problems.append(
                f"{at(f'domain {name}')}: domains.{name}: the name 'meshgate' is "
                "reserved for the system schema; choose another domain name"
            )
    for (domain, name), product in d.products.items():
        label = f"product {domain}.{name}"
        if domain not in d.domains:
            problems.append(
                f"{at(label)}: {label}: domain {domain!r} is not declared under `domains:`"
            )
        if product.table is not None and product.table.source not in d.sources:
            problems.append(
                f"{at(label)}: {label}.table.source: source {product.table.source!r} is not "
                f"declared under `sources:` (declared: {', '.join(sorted(d.sources)) or 'none'})"
            )
        if product.table is not None:
            declared = {c.name for c in product.columns}
            for column in product.table.columns:
                if column not in declared:
                    problems.append(
                        f"{at(label)}: {label}.table.columns.{column}: not a declared column"
                    )
    for name, user in d.users.items():
        for role_name in user.roles:
            if role_name not in d.roles:
                problems.append(
                    f"{at(f'user {name}')}: users.{name}.roles: unknown role {role_name!r}"
                )
    for name, role in d.roles.items():
        for grant in role.grants:
            if grant == "*":
                continue
            domain, _, product_name = grant.partition(".")
            if domain not in d.domains:
                problems.append(
                    f"{at(f'role {name}')}: roles.{name}.grants: unknown domain {domain!r}"
                )
            elif product_name != "*" and (domain, product_name) not in d.products:
                problems.append(
                    f"{at(f'role {name}')}: roles.{name}.grants: unknown product {grant!r}"
                )
    _cross_check_policies(d, problems, at)


def _cross_check_policies(
    d: MeshDefinition, problems: list[str], at: Callable[[str], str]
) -> None:
    """Names a policy uses must exist: a typo must never leave a product unprotected."""
    for (product_name, role), policy in d.policies.items():
        label = f"policy {product_name}.{role}"
        where = f"{at(label)}: policies.{product_name}/{role}"
        domain, _, name = product_name.partition(".")
        product = d.products.get((domain, name))
        if product is None:
            problems.append(f"{where}.product: unknown product {product_name!r}")
            continue
        if role not in d.roles:
            problems.append(f"{where}.role: unknown role {role!r}")
        declared = {c.name for c in product.columns}
        for column in policy.masks:
            if column not in declared:
                problems.append(
                    f"{where}.masks.{column}: {product_name} has no column {column!r} "
                    f"(columns: {', '.join(sorted(declared))})"
                )
    for name, rule in d.mesh_policies.items():
        where = f"{at(f'mesh policy {name}')}: mesh_policies.{name}"
        for role in rule.exempt_roles:
            if role not in d.roles:
                problems.append(f"{where}.exempt_roles: unknown role {role!r}")
