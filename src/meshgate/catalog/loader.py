"""Read a config directory into one validated `MeshDefinition`.

Every problem is reported as `file:line:column: key.path[index]: what is wrong`, sorted by file
and line, and all of them at once: an item that fails validation still takes part in the
cross-checks (with its bad keys left out), so an unknown key never hides an undeclared source.
Checks the catalog cannot run itself (the policies' compiler, which depends on the catalog) are
passed in and report into the same list, over the items that passed validation.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

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
from meshgate.catalog.problems import (
    ConfigProblem,
    Document,
    KeyPath,
    child_of,
    did_you_mean,
    explain_errors,
    key_path,
    keys_of,
    read_document,
)
from meshgate.catalog.tls import tls_material
from meshgate.errors import ConfigError
from meshgate.types import arrow_type, parse_sql_type

# `${NAME}`, or `${NAME:-fallback}` (the fallback is used when NAME is unset).
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# A secret's value must be exactly `${NAME}`: no inline fallback either.
SECRET_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
# Keys whose value is a secret: the file may hold only a `${VAR}` reference to it.
SECRET_KEYS = (("server", "jwt", "key"), ("server", "replicas", "signing_key"))
# The list sections of a file, the model of one item, and what an item is called.
SECTIONS: dict[str, tuple[type[BaseModel], str]] = {
    "sources": (SourceConfig, "source"),
    "domains": (DomainConfig, "domain"),
    "products": (ProductConfig, "product"),
    "users": (UserConfig, "user"),
    "roles": (RoleConfig, "role"),
    "policies": (PolicyConfig, "policy"),
    "mesh_policies": (MeshPolicyConfig, "mesh policy"),
}
SINGLES: dict[str, type[BaseModel]] = {"mesh": MeshConfig, "server": ServerConfig}
_SINGLE_MODELS = frozenset(SINGLES.values())


@dataclass(frozen=True)
class Place:
    """Where an item is declared: its file (with positions) and its key path there."""

    document: Document
    path: KeyPath
    # For an item validated without its broken list elements: the original index of each kept
    # element, per list (by its path inside the item).
    kept: dict[KeyPath, list[int]] = field(default_factory=dict)

    def locate(self, path: KeyPath) -> KeyPath:
        """The key path in the file of `path` inside the item as validated."""
        original: list[str | int] = []
        for part in path:
            indexes = self.kept.get(tuple(original))
            in_file = part
            if isinstance(part, int) and indexes is not None and part < len(indexes):
                in_file = indexes[part]
            original.append(in_file)
        return (*self.path, *original)


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
    places: dict[str, Place] = field(default_factory=dict)
    policies: dict[tuple[str, str], PolicyConfig] = field(default_factory=dict)
    mesh_policies: dict[str, MeshPolicyConfig] = field(default_factory=dict)

    def problem(self, label: str, path: KeyPath, message: str) -> ConfigProblem:
        """A problem at `path` inside the item `label` (e.g. "product sales.orders")."""
        place = self.places.get(label)
        if place is None:
            return ConfigProblem("", 0, 0, key_path(path), message)
        return place.document.at(place.locate(path), message)

    def where(self, label: str, *path: str | int) -> str:
        """`file:line:column: key.path` of a place inside an item, to prefix a message with."""
        return str(self.problem(label, path, "")).removesuffix(": ")


Check = Callable[[MeshDefinition], Iterable[ConfigProblem | str]]
"""More problems of a definition, found by a later stage (e.g. policies that do not compile)."""


def load_mesh(
    directory: Path,
    *,
    known_source_kinds: frozenset[str] | None = None,
    checks: Sequence[Check] = (),
) -> MeshDefinition:
    """Load and validate every `*.yaml` file below `directory`; raise with every problem.

    Each of `checks` sees the definition without the products that have a problem of their
    own, so that it neither reports them twice nor trips over them; its problems join the one
    report.
    """
    directory = directory.resolve()
    if not directory.is_dir():
        raise ConfigError(
            f"config directory {directory} does not exist; pass --config DIR pointing at a "
            "directory of YAML files (see config/demo for an example)"
        )
    files = sorted(p for p in directory.rglob("*") if p.suffix in {".yaml", ".yml"})
    if not files:
        raise ConfigError(f"config directory {directory} holds no .yaml files")
    problems: list[ConfigProblem] = []
    reading = _Reading()
    for path in files:
        document = _read_file(path, path.relative_to(directory).as_posix(), problems)
        if document is not None:
            reading.add(document, problems)
    definition = reading.definition(directory, problems)
    _cross_check(definition, reading.broken, problems, known_source_kinds)
    sound = _without_flawed(definition, problems)
    found: list[ConfigProblem | str] = [*problems]
    for check in checks:
        found.extend(check(sound))
    if found:
        raise ConfigError(summary(directory, found))
    return definition


def _without_flawed(d: MeshDefinition, problems: Sequence[ConfigProblem]) -> MeshDefinition:
    """`d` without the products and mesh-wide rules that have a problem (or a product with an
    undeclared domain), and without `server.jwt` when the server section has one: what later
    checks can build on. A product policy stays: its bad keys are already left out."""

    def flawed(label: str) -> bool:
        place = d.places.get(label)
        return place is not None and any(_inside(problem, place) for problem in problems)

    products = {
        (domain, name): product
        for (domain, name), product in d.products.items()
        if domain in d.domains and not flawed(f"product {domain}.{name}")
    }
    rules = {name: r for name, r in d.mesh_policies.items() if not flawed(f"mesh policy {name}")}
    server = d.server.model_copy(update={"jwt": None}) if flawed("server") else d.server
    return replace(d, products=products, mesh_policies=rules, server=server)


def _inside(problem: ConfigProblem, place: Place) -> bool:
    """Whether `problem` is about the item declared at `place`."""
    prefix = key_path(place.path)
    return problem.file == place.document.file and (
        problem.path == prefix or problem.path.startswith((f"{prefix}.", f"{prefix}["))
    )


def summary(directory: Path, problems: Iterable[ConfigProblem | str]) -> str:
    """The one report of a broken config: every problem, sorted by file and line.

    A problem may come as text already in the `file:line:column: path: message` form (the
    policy compiler's); it sorts by its place as well.
    """
    lines = [str(p) for p in sorted(set(problems), key=_place_of)]
    count = f"{len(lines)} problem{'s' if len(lines) != 1 else ''}"
    return f"invalid configuration in {directory} ({count}):\n  " + "\n  ".join(lines)


_PLACE = re.compile(r"^([^:]*):(\d+):(\d+): ")


def _place_of(problem: ConfigProblem | str) -> tuple[str, int, int, str]:
    if isinstance(problem, ConfigProblem):
        return (problem.file, problem.line, problem.column, str(problem))
    place = _PLACE.match(problem)
    if place is None:
        return ("", 0, 0, problem)
    return (place.group(1), int(place.group(2)), int(place.group(3)), problem)


def _read_file(path: Path, label: str, problems: list[ConfigProblem]) -> Document | None:
    parsed = read_document(label, path.read_text(encoding="utf-8"))
    if isinstance(parsed, ConfigProblem):
        problems.append(parsed)
        return None
    if parsed.data is None:
        parsed.data = {}
    if not isinstance(parsed.data, dict):
        problems.append(parsed.at((), "expected a mapping of sections (mesh, sources, domains, "
                                      "products, ...) at the top level"))  # fmt: skip
        return None
    _check_secret_references(parsed, problems)
    parsed.data = _substitute_env(parsed.data, parsed, (), problems)
    sections = keys_of(ConfigFile)
    for key in parsed.data:
        if key not in sections:
            hint = did_you_mean(str(key), sections) or f" (sections: {', '.join(sections)})"
            problems.append(parsed.at((key,), f"unknown section {key!r}{hint}"))
    return parsed


def _check_secret_references(document: Document, problems: list[ConfigProblem]) -> None:
    """A config file is shared and versioned: a secret in it must be an `${ENV}` reference."""
    for path in SECRET_KEYS:
        node: Any = document.data
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None and not (isinstance(node, str) and SECRET_REFERENCE.fullmatch(node)):
            problems.append(document.at(
                path, 'must be an environment reference such as "${JWT_KEY}", never the key '
                "itself (a public key may also be a `key_file`)",
            ))  # fmt: skip


def _substitute_env(
    value: Any, document: Document, where: KeyPath, problems: list[ConfigProblem]
) -> Any:
    """Replace `${VAR}` in strings; an undefined variable is an error, never an empty string."""
    if isinstance(value, dict):
        return {k: _substitute_env(v, document, (*where, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v, document, (*where, i), problems) for i, v in enumerate(value)]
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, fallback = match.group(1), match.group(2)
            if name not in os.environ and fallback is not None:
                return fallback
            if name not in os.environ:
                problems.append(document.at(
                    where, f"environment variable ${{{name}}} is not set; export it before "
                    "starting meshgate",
                ))  # fmt: skip
                return ""
            return os.environ[name]

        return ENV_REFERENCE.sub(replace, value)
    return value


_DROPPED = object()


def _validate(
    model: type[BaseModel], document: Document, path: KeyPath, problems: list[ConfigProblem]
) -> tuple[BaseModel | None, Place]:
    """The item as a model, and its place.

    An invalid item is validated once more with its offending keys left out, so that the
    cross-checks still see its references; None when even that fails.
    """
    raw: Any = document.data
    for part in path:
        raw = raw[part]
    try:
        return model.model_validate(raw), Place(document, path)
    except ValidationError as exc:
        errors = exc.errors()
    problems.extend(explain_errors(document, path, model, errors))
    trimmed = copy.deepcopy(raw)
    for error in errors:
        _drop(trimmed, tuple(error["loc"]), error["type"] == "missing")
    kept: dict[KeyPath, list[int]] = {}
    trimmed = _without_dropped(trimmed, (), kept)
    repaired: BaseModel | None
    try:
        repaired = model.model_validate(trimmed)
    except ValidationError:
        repaired = _salvage(model, trimmed)
    return repaired, Place(document, path, kept)


def _salvage(model: type[BaseModel], raw: Any) -> BaseModel | None:
    """The fields of an item that are valid on their own, for the cross-checks only.

    A missing list or text field is left empty; None when a list item's name is missing, since
    nothing could refer to the item then. A section such as `mesh:` keeps its valid fields
    whatever its name (the policy checks need `mesh.hash_key`).
    """
    if not isinstance(raw, dict):
        return None
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in raw and info.annotation is not None:
            with contextlib.suppress(ValidationError):
                values[name] = TypeAdapter(info.annotation).validate_python(raw[key])
        if name not in values and info.is_required():
            if name in ("name", "domain", "product", "role") and model not in _SINGLE_MODELS:
                return None
            values[name] = () if typing.get_origin(info.annotation) is tuple else ""
    return model.model_construct(**values)


def _drop(item: Any, loc: KeyPath, missing: bool) -> None:
    """Mark the key an error is about, or for a missing key the list element holding it."""
    node, parents = item, []
    for part in loc:
        found, child = child_of(node, part)
        if found:
            parents.append((node, part))
            node = child
    if missing:
        parents = [(n, p) for n, p in parents if isinstance(n, list)]
    if parents:
        container, key = parents[-1]
        container[key] = _DROPPED


def _without_dropped(value: Any, path: KeyPath, kept: dict[KeyPath, list[int]]) -> Any:
    """`value` without the marked parts; `kept` records the surviving indexes of each list."""
    if isinstance(value, dict):
        return {
            k: _without_dropped(v, (*path, k), kept)
            for k, v in value.items()
            if v is not _DROPPED
        }
    if isinstance(value, list):
        indexes = [i for i, v in enumerate(value) if v is not _DROPPED]
        if len(indexes) < len(value):
            kept[path] = indexes
        return [_without_dropped(value[i], (*path, n), kept) for n, i in enumerate(indexes)]
    return value


def _item_name(kind: str, raw: Any) -> str | None:
    """An item's name as written, for an item too broken to validate."""
    if not isinstance(raw, dict):
        return None
    if kind == "product":
        return f"{raw.get('domain')}.{raw.get('name')}"
    name = raw.get("name")
    return name if isinstance(name, str) else None


@dataclass
class _Reading:
    """Items of every file read so far, with their places; names of items too broken to use."""

    items: dict[str, list[tuple[BaseModel, Place]]] = field(default_factory=dict)
    singles: dict[str, list[tuple[BaseModel | None, Place]]] = field(default_factory=dict)
    broken: dict[str, set[str]] = field(default_factory=dict)

    def add(self, document: Document, problems: list[ConfigProblem]) -> None:
        for section, model in SINGLES.items():
            if section in document.data:
                single, place = _validate(model, document, (section,), problems)
                self.singles.setdefault(section, []).append((single, place))
        for section, (item_model, kind) in SECTIONS.items():
            value = document.data.get(section)
            if value is None:
                continue
            if not isinstance(value, list):
                problems.append(document.at((section,), f"expected a list of {kind} entries, "
                                            "each starting with `- `"))  # fmt: skip
                continue
            for index, raw in enumerate(value):
                item, place = _validate(item_model, document, (section, index), problems)
                if item is not None:
                    self.items.setdefault(section, []).append((item, place))
                elif (name := _item_name(kind, raw)) is not None:
                    self.broken.setdefault(kind, set()).add(name)

    def definition(self, root: Path, problems: list[ConfigProblem]) -> MeshDefinition:
        places: dict[str, Place] = {}
        tables: dict[str, dict[Any, Any]] = {section: {} for section in SECTIONS}
        for section, (_, kind) in SECTIONS.items():
            for item, place in self.items.get(section, []):
                key = _key(item)
                label = f"{kind} {key if isinstance(key, str) else '.'.join(key)}"
                if key in tables[section]:
                    first = places[label].document.at(places[label].path, "")
                    problems.append(place.document.at(
                        place.path, f"{label} is declared twice (also at {first.file}:"
                        f"{first.line})",
                    ))  # fmt: skip
                    continue
                tables[section][key] = item
                places[label] = place
        meshes = self.singles.get("mesh", [])
        for _, place in meshes[1:]:
            problems.append(place.document.at(place.path, "`mesh:` is declared in more than "
                                              f"one file (first in {meshes[0][1].document.file})"))
        if not meshes:
            problems.append(ConfigProblem("", 0, 0, "", "no file declares `mesh:` "
                                          "(mesh: {name: <catalog name>})"))  # fmt: skip
        servers = [(s, p) for s, p in self.singles.get("server", [])]
        if servers:
            places["server"] = servers[-1][1]
        mesh = next((m for m, _ in meshes if isinstance(m, MeshConfig)), None)
        server = next((s for s, _ in reversed(servers) if isinstance(s, ServerConfig)), None)
        return MeshDefinition(
            root, mesh or MeshConfig(name="mesh"), server or ServerConfig(), tables["sources"],
            tables["domains"], tables["products"], tables["users"], tables["roles"], places,
            tables["policies"], tables["mesh_policies"],
        )  # fmt: skip


def _key(item: BaseModel) -> Any:
    if isinstance(item, ProductConfig):
        return (item.domain, item.name)
    if isinstance(item, PolicyConfig):
        return (item.product, item.role)
    name: str = item.name  # type: ignore[attr-defined]
    return name


def _cross_check(
    d: MeshDefinition, broken: dict[str, set[str]], problems: list[ConfigProblem],
    kinds: frozenset[str] | None,
) -> None:  # fmt: skip
    """Names used across files must be declared; a reference to a broken item is not
    reported twice."""

    def known(kind: str, name: str, declared: Iterable[str]) -> bool:
        return name in declared or name in broken.get(kind, set())

    def unknown(kind: str, name: str, declared: Iterable[str]) -> str:
        names = sorted(declared)
        listed = " (declared: " + (", ".join(names) or "none") + ")"
        return f"{kind} {name!r} is not declared under `{kind}s:`" + (
            did_you_mean(name, names) or listed
        )

    for section, check in (
        ("server.jwt", lambda: d.server.jwt and trusted_keys(d.server.jwt, d.directory)),
        ("server.tls", lambda: d.server.tls and tls_material(d.server.tls, d.directory)),
    ):
        try:
            check()
        except ConfigError as exc:
            where, _, message = exc.message.partition(": ")
            path = tuple(where.split(".")[1:]) if where.startswith(section) else ()
            problems.append(d.problem("server", path, message if path else exc.message))
    for name, source in d.sources.items():
        if kinds is not None and source.kind and source.kind not in kinds:
            problems.append(d.problem(
                f"source {name}", ("kind",), f"unknown source kind {source.kind!r}"
                f"{did_you_mean(source.kind, kinds)} (installed kinds: {', '.join(sorted(kinds))})",
            ))  # fmt: skip
    for reserved in ("meshgate", "information_schema"):  # the schemas meshgate itself serves
        if reserved in d.domains:
            problems.append(d.problem(f"domain {reserved}", ("name",), f"the name {reserved!r} "
                                      "is reserved for a system schema; choose another domain "
                                      "name"))  # fmt: skip
    products = {f"{domain}.{name}" for domain, name in d.products}
    for (domain, name), product in d.products.items():
        label = f"product {domain}.{name}"
        if not known("domain", domain, d.domains):
            problems.append(d.problem(label, ("domain",), unknown("domain", domain, d.domains)))
        for index, column in enumerate(product.columns):
            try:
                arrow_type(parse_sql_type(column.type))
            except ConfigError as exc:
                problems.append(d.problem(label, ("columns", index, "type"), exc.message))
        successor = product.deprecated.successor if product.deprecated is not None else None
        if successor == f"{domain}.{name}":
            problems.append(d.problem(label, ("deprecated", "successor"), "a product cannot "
                                      "succeed itself; name the product consumers move to"))
        elif successor is not None and not known("product", successor, products):
            problems.append(d.problem(label, ("deprecated", "successor"),
                                      unknown("product", successor, products)))
        if product.table is None:
            continue
        if not known("source", product.table.source, d.sources):
            problems.append(d.problem(label, ("table", "source"),
                                      unknown("source", product.table.source, d.sources)))
        declared = [c.name for c in product.columns]
        for mapped in product.table.columns:
            if mapped not in declared:
                problems.append(d.problem(
                    label, ("table", "columns", mapped),
                    f"{mapped!r} is not a declared column{did_you_mean(mapped, declared)}",
                ))  # fmt: skip
    for name, user in d.users.items():
        for index, role in enumerate(user.roles):
            if not known("role", role, d.roles):
                problems.append(d.problem(f"user {name}", ("roles", index),
                                          unknown("role", role, d.roles)))
    for name, role_config in d.roles.items():
        for index, grant in enumerate(role_config.grants):
            domain, _, product_name = grant.partition(".")
            role_label, at = f"role {name}", ("grants", index)
            if grant == "*" or (domain in broken.get("domain", set())):
                continue
            if domain not in d.domains:
                problems.append(d.problem(role_label, at, unknown("domain", domain, d.domains)))
            elif product_name != "*" and not known("product", grant, products):
                problems.append(d.problem(role_label, at, unknown("product", grant, products)))
    _cross_check_policies(d, products, known, unknown, problems)


def _cross_check_policies(
    d: MeshDefinition, products: set[str], known: Callable[[str, str, Iterable[str]], bool],
    unknown: Callable[[str, str, Iterable[str]], str], problems: list[ConfigProblem],
) -> None:  # fmt: skip
    """Names a policy uses must exist: a typo must never leave a product unprotected."""
    for (product_name, role), policy in d.policies.items():
        label = f"policy {product_name}.{role}"
        domain, _, name = product_name.partition(".")
        product = d.products.get((domain, name))
        if product is None:
            if not known("product", product_name, products):
                problems.append(d.problem(label, ("product",),
                                          unknown("product", product_name, products)))
            continue
        if not known("role", role, d.roles):
            problems.append(d.problem(label, ("role",), unknown("role", role, d.roles)))
        declared = [c.name for c in product.columns]
        for column in policy.masks:
            if column not in declared:
                problems.append(d.problem(
                    label, ("masks", column), f"{product_name} has no column {column!r}"
                    + (did_you_mean(column, declared) or f" (columns: {', '.join(declared)})"),
                ))  # fmt: skip
    for name, rule in d.mesh_policies.items():
        for index, role in enumerate(rule.exempt_roles):
            if not known("role", role, d.roles):
                problems.append(d.problem(f"mesh policy {name}", ("exempt_roles", index),
                                          unknown("role", role, d.roles)))
