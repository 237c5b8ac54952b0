"""ITI-18 Registry Stored Query: ``query:AdhocQueryRequest`` and ``query:AdhocQueryResponse`` (element level).

The typed queries and their ``$Parameter`` slots come from :mod:`rsb_connector.query`; this module only writes
and reads them as ebRS 3.0 elements. A parameter list too long for one ``rim:Value`` (256 characters in the
schema) is split over several ``rim:Value`` elements, which ITI TF-2a 3.18.4.1.2.3.5 defines as the same OR-ed
list; the parser joins them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree

from rsb_connector.errors import Problem, QueryError
from rsb_connector.metadata.model import Association, DocumentEntry, SubmissionSet
from rsb_connector.query import Query, ReturnType, format_value, from_parameters, parse_value, to_parameters
from rsb_connector.xds.constants import QUERY, RIM, RS, STATUS_FAILURE
from rsb_connector.xds.ebrim import build_registry_object_list, parse_registry_object_list
from rsb_connector.xds.rs import build_registry_error_list, parse_registry_response

__all__ = [
    "MAX_VALUE_LENGTH",
    "QueryResponse",
    "build_request",
    "build_response",
    "parse_request",
    "parse_response",
]

MAX_VALUE_LENGTH = 256
"""Longest ``rim:Value`` the ebRIM schema allows (``rim:LongName``)."""

_R = f"{{{RIM}}}"
_Q = f"{{{QUERY}}}"
_NSMAP = {"query": QUERY, "rim": RIM}
_ASSOCIATION_TYPES_SLOT = "$AssociationTypes"


def _or_list_slots(cls: type) -> set[str]:
    """Slots of a query class whose several ``rim:Value`` elements form one OR-ed list."""
    slots: set[str] = set()
    params: dict[str, tuple[str, str, bool]] = getattr(cls, "params", {})
    for slot, kind, _required in params.values():
        if kind in ("strs", "status", "code_or"):
            slots.add(slot)
    uuid_slot: str = getattr(cls, "uuid_slot", "")
    if uuid_slot and not getattr(cls, "single", False):
        slots.add(uuid_slot)
        slots.add(getattr(cls, "unique_id_slot", ""))
    if uuid_slot:
        slots.add(_ASSOCIATION_TYPES_SLOT)
    slots.discard("")
    return slots


def _split(value: str) -> list[str]:
    """Split a ``('a','b',…)`` list into several values of at most :data:`MAX_VALUE_LENGTH` characters."""
    if len(value) <= MAX_VALUE_LENGTH:
        return [value]
    try:
        items = parse_value(value)
    except ValueError:
        return [value]
    chunks: list[str] = []
    current: list[str] = []
    for item in items:
        if current and len(format_value([*current, item])) > MAX_VALUE_LENGTH:
            chunks.append(format_value(current))
            current = []
        current.append(item)
    if current:
        chunks.append(format_value(current))
    return chunks


def build_request(query: Query, *, return_type: ReturnType | None = None) -> etree._Element:
    """A ``query:AdhocQueryRequest`` for a stored query.

    ``query:ResponseOption`` has ``returnType`` (``return_type`` or else the query's own) and
    ``returnComposedObjects="true"``; ``rim:AdhocQuery`` has the stored query id, ``home`` when the query names a
    home community, and one ``rim:Slot`` per parameter from :func:`rsb_connector.query.to_parameters`.
    """
    root = etree.Element(f"{_Q}AdhocQueryRequest", nsmap=_NSMAP)
    etree.SubElement(
        root,
        f"{_Q}ResponseOption",
        returnType=(return_type or query.return_type).value,
        returnComposedObjects="true",
    )
    adhoc = etree.SubElement(root, f"{_R}AdhocQuery", id=query.query_id.value)
    if query.home_community_id:
        adhoc.set("home", query.home_community_id)
    or_slots = _or_list_slots(type(query))
    for name, values in to_parameters(query).items():
        slot = etree.SubElement(adhoc, f"{_R}Slot", name=name)
        value_list = etree.SubElement(slot, f"{_R}ValueList")
        for value in values:
            for part in _split(value) if name in or_slots else [value]:
                etree.SubElement(value_list, f"{_R}Value").text = part
    return root


def parse_request(el: etree._Element) -> Query:
    """Read a ``query:AdhocQueryRequest`` into a typed query.

    Checks it as a registry must, through :func:`rsb_connector.query.from_parameters`: raises
    :class:`~rsb_connector.errors.QueryError` with ``XDSUnknownStoredQuery``, ``XDSStoredQueryMissingParam``,
    ``XDSStoredQueryParamNumber`` or ``XDSRegistryError``. A missing ``returnType`` is read as ``LeafClass``;
    slots without values count as absent; a slot given twice is ``XDSStoredQueryParamNumber``.
    """
    if el.tag != f"{_Q}AdhocQueryRequest":
        raise QueryError([Problem("XDSRegistryError", f"expected query:AdhocQueryRequest, found {el.tag}", "Body")])
    option = el.find(f"{_Q}ResponseOption")
    return_type = (option.get("returnType") if option is not None else None) or ReturnType.LEAF_CLASS.value
    adhoc = el.find(f"{_R}AdhocQuery")
    if adhoc is None:
        raise QueryError([Problem("XDSRegistryError", "the request has no rim:AdhocQuery", "AdhocQuery")])
    query_id = (adhoc.get("id") or "").strip()
    problems: list[Problem] = []
    parameters: dict[str, list[str]] = {}
    for slot in adhoc.iterchildren(f"{_R}Slot"):
        name = (slot.get("name") or "").strip()
        values = [(v.text or "").strip() for v in slot.iterfind(f"{_R}ValueList/{_R}Value")]
        values = [v for v in values if v]
        if not values:
            continue
        if name in parameters:
            problems.append(
                Problem(
                    "XDSStoredQueryParamNumber",
                    f"{name} is given in two Slots: give it in one Slot, its values in several Value elements",
                    name,
                )
            )
            continue
        parameters[name] = values
    try:
        query = from_parameters(query_id, parameters, return_type=return_type, home_community_id=adhoc.get("home"))
    except QueryError as exc:
        raise QueryError([*problems, *exc.problems]) from None
    if problems:
        raise QueryError(problems)
    return query


@dataclass(slots=True)
class QueryResponse:
    """A stored query response read into the model.

    Attributes:
        status: the response status URN.
        entries / submission_sets / associations: the objects returned (LeafClass).
        object_refs: ids of ``rim:ObjectRef`` elements (ObjectRef responses).
        problems: the registry's errors and warnings, then any problem met reading the returned metadata.
    """

    status: str
    entries: list[DocumentEntry] = field(default_factory=list)
    submission_sets: list[SubmissionSet] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)
    object_refs: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def build_response(
    status: str,
    *,
    entries: Sequence[DocumentEntry] = (),
    submission_sets: Sequence[SubmissionSet] = (),
    associations: Sequence[Association] = (),
    object_refs: Sequence[str] = (),
    return_type: ReturnType = ReturnType.LEAF_CLASS,
    problems: Sequence[Problem] = (),
) -> etree._Element:
    """A ``query:AdhocQueryResponse``.

    ``status``, an ``rs:RegistryErrorList`` when there are problems, and always a ``rim:RegistryObjectList`` (the
    schema requires it). With status Failure the list is empty whatever objects are given. ``LeafClass`` writes
    the full objects (and an ``rim:ObjectRef`` per id of ``object_refs``); ``ObjectRef`` writes one
    ``rim:ObjectRef`` per entry, submission set, association and object ref.
    """
    root = etree.Element(f"{_Q}AdhocQueryResponse", nsmap={**_NSMAP, "rs": RS})
    root.set("status", status)
    if problems:
        root.append(build_registry_error_list(problems))
    if status == STATUS_FAILURE:
        entries, submission_sets, associations, object_refs = (), (), (), ()
    if return_type is ReturnType.OBJECT_REF:
        object_list = etree.SubElement(root, f"{_R}RegistryObjectList")
        ids = [
            *(e.entry_uuid for e in entries),
            *(s.entry_uuid for s in submission_sets),
            *(a.entry_uuid for a in associations),
            *object_refs,
        ]
    else:
        object_list = build_registry_object_list(submission_sets, entries, associations)
        root.append(object_list)
        ids = list(object_refs)
    for object_id in ids:
        etree.SubElement(object_list, f"{_R}ObjectRef", id=object_id)
    return root


def parse_response(el: etree._Element) -> QueryResponse:
    """Read a ``query:AdhocQueryResponse`` (raises ProtocolError when it has no status; otherwise tolerant).

    A missing ``rim:RegistryObjectList`` (which the schema requires) is read as an empty one.
    """
    result = parse_registry_response(el)
    response = QueryResponse(status=result.status, problems=list(result.problems))
    object_list = el.find(f"{_R}RegistryObjectList")
    if object_list is None:
        return response
    parsed = parse_registry_object_list(object_list)
    response.entries = parsed.entries
    response.submission_sets = parsed.submission_sets
    response.associations = parsed.associations
    response.object_refs = parsed.object_refs
    response.problems.extend(parsed.problems)
    return response
