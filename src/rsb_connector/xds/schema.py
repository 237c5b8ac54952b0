"""XSD validation against the official XDS.b and ebRS 3.0 schemas.

The schemas are not shipped in the wheel: they are found through ``RSB_XDS_SCHEMAS`` or, in a development checkout,
at ``../shared/reference/ihe-xds-schemas`` next to the repository. One :class:`lxml.etree.XMLSchema` built from a
small driver document validates any root element of the xdsb, rs, lcm, query and rim namespaces. Validate the
XOP-resolved infoset (:func:`rsb_connector.xds.xop.resolve_for_validation`): ``xdsb:Document`` is base64 there.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from lxml import etree

from rsb_connector.errors import RsbError
from rsb_connector.xds.constants import LCM, QUERY, RIM, RS, XDSB

__all__ = ["ENV_VAR", "SchemaUnavailable", "default_schema_dir", "load_schema", "validate"]

ENV_VAR = "RSB_XDS_SCHEMAS"
"""Environment variable naming the schema directory (the one holding ``iti/schema/IHE``)."""

_RELATIVE = {
    XDSB: Path("iti/schema/IHE/XDS.b_DocumentRepository.xsd"),
    RS: Path("iti/schema/ebRS/rs.xsd"),
    LCM: Path("iti/schema/ebRS/lcm.xsd"),
    QUERY: Path("iti/schema/ebRS/query.xsd"),
    RIM: Path("iti/schema/ebRS/rim.xsd"),
}
_XS = "http://www.w3.org/2001/XMLSchema"


class SchemaUnavailable(RsbError):
    """The XDS schemas cannot be found (set ``RSB_XDS_SCHEMAS`` to the ``ihe-xds-schemas`` directory)."""


def _candidate(repo_root: Path) -> Path | None:
    path = repo_root.parent / "shared" / "reference" / "ihe-xds-schemas"
    return path if (path / _RELATIVE[XDSB]).is_file() else None


def default_schema_dir() -> Path | None:
    """Where the schemas are: ``$RSB_XDS_SCHEMAS`` when set, else ``../shared/reference/ihe-xds-schemas`` beside
    the repository that holds this package (or the current directory's repository); ``None`` when not found."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    starts = [Path(__file__).resolve().parent, Path.cwd().resolve()]
    for start in starts:
        for directory in (start, *start.parents):
            if (directory / "pyproject.toml").is_file():
                found = _candidate(directory)
                if found is not None:
                    return found
                break
    return None


_cache: dict[Path, etree.XMLSchema] = {}
_lock = threading.Lock()
_validate_lock = threading.Lock()


def _driver(schema_dir: Path) -> bytes:
    root = etree.Element(f"{{{_XS}}}schema", nsmap={"xs": _XS})
    for namespace, relative in _RELATIVE.items():
        imported = etree.SubElement(root, f"{{{_XS}}}import")
        imported.set("namespace", namespace)
        imported.set("schemaLocation", (schema_dir / relative).resolve().as_uri())
    return etree.tostring(root)


def load_schema(schema_dir: Path | None = None) -> etree.XMLSchema:
    """The combined XDS.b / ebRS schema (built once per directory, then cached).

    Raises:
        SchemaUnavailable: no schema directory, or it lacks the expected files.
    """
    directory = schema_dir if schema_dir is not None else default_schema_dir()
    if directory is None:
        raise SchemaUnavailable(f"XDS schemas not found: set {ENV_VAR} to the ihe-xds-schemas directory")
    directory = directory.resolve()
    with _lock:
        cached = _cache.get(directory)
        if cached is not None:
            return cached
        missing = [str(relative) for relative in _RELATIVE.values() if not (directory / relative).is_file()]
        if missing:
            raise SchemaUnavailable(f"XDS schemas incomplete in {directory}: missing {', '.join(missing)}")
        parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
        driver = etree.fromstring(_driver(directory), parser=parser, base_url=(directory / "driver.xsd").as_uri())
        try:
            schema = etree.XMLSchema(driver)
        except etree.XMLSchemaParseError as exc:
            raise SchemaUnavailable(f"XDS schemas in {directory} could not be loaded: {exc}") from None
        _cache[directory] = schema
        return schema


def validate(el: etree._Element, *, schema: etree.XMLSchema | None = None) -> list[str]:
    """Schema errors of ``el`` (an empty list when valid), each ``line N: message``.

    The element is re-serialized with indentation before validation, so line numbers point into a readable
    rendering of it (``el`` itself is not modified).

    Raises:
        SchemaUnavailable: ``schema`` is ``None`` and the schemas cannot be found.
    """
    active = schema if schema is not None else load_schema()
    text = etree.tostring(el, pretty_print=True, with_tail=False)
    document = etree.fromstring(text, parser=etree.XMLParser(no_network=True, resolve_entities=False))
    with _validate_lock:  # a schema's error_log is shared state: read it under the same lock as validate()
        if active.validate(document):
            return []
        entries: list[Any] = list(cast(Iterable[Any], active.error_log))
    return [f"line {entry.line}: {entry.message}" for entry in entries]
