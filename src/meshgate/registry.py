"""Find connector classes by source kind through the `meshgate.connectors` entry points."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from meshgate.errors import ConfigError
from meshgate.spi import Connector, ConnectorContext

GROUP = "meshgate.connectors"


@cache
def installed_kinds() -> frozenset[str]:
    return frozenset(ep.name for ep in entry_points(group=GROUP))


def connector_class(kind: str) -> type[Connector]:
    """Load the connector for `kind` lazily, with an install hint when it is missing."""
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == kind]
    if not matches:
        raise ConfigError(
            f"no connector for source kind {kind!r}; installed kinds: "
            f"{', '.join(sorted(installed_kinds())) or 'none'} (install the package "
            f"providing meshgate_{kind}, or reinstall meshgate with `pip install -e .`)"
        )
    try:
        loaded = matches[0].load()
    except ImportError as exc:
        raise ConfigError(
            f"the {kind!r} connector could not be imported ({exc}); install its driver"
        ) from None
    if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
        raise ConfigError(f"entry point {matches[0].value} is not a meshgate Connector")
    return loaded


def create_connector(kind: str, context: ConnectorContext) -> Connector:
    return connector_class(kind)(context)
