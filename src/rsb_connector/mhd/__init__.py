"""MHD binding (IHE MHD 4.2.x, FHIR R4): the DocumentReference / List / Bundle mapping shared by client and hub.

- :mod:`~rsb_connector.mhd.constants`: profile, code system and extension URLs.
- :mod:`~rsb_connector.mhd.mapping`: DocumentEntry <-> DocumentReference, SubmissionSet <-> List, times, hashes.
- :mod:`~rsb_connector.mhd.bundle`: ITI-65 Provide Document Bundle (build, parse and check) and its response.
- :mod:`~rsb_connector.mhd.search`: ITI-67 search parameters <-> stored queries, the searchset Bundle.
- :mod:`~rsb_connector.mhd.outcome`: XDS problems <-> OperationOutcome, HTTP status.

Resources are built and read with ``fhir.resources.R4B`` models, which are wire-identical to R4 for the resources
MHD uses (never the package's default R5 models).
"""

from .bundle import (
    BundleEntryInfo,
    ParsedBundle,
    TransactionResponse,
    build_provide_bundle,
    build_transaction_response,
    parse_provide_bundle,
    parse_transaction_response,
)
from .constants import ProvideBundleProfile
from .mapping import (
    document_reference_to_entry,
    dtm_to_fhir_time,
    entry_to_document_reference,
    fhir_time_to_dtm,
    list_to_submission_set,
    relations,
    resource_id_for,
    submission_set_to_list,
)
from .outcome import http_status, operation_outcome_to_problems, problems_to_operation_outcome
from .search import MhdQuery, parse_search, parse_search_result_bundle, search_result_bundle, to_search_params

__all__ = [
    "BundleEntryInfo",
    "MhdQuery",
    "ParsedBundle",
    "ProvideBundleProfile",
    "TransactionResponse",
    "build_provide_bundle",
    "build_transaction_response",
    "document_reference_to_entry",
    "dtm_to_fhir_time",
    "entry_to_document_reference",
    "fhir_time_to_dtm",
    "http_status",
    "list_to_submission_set",
    "operation_outcome_to_problems",
    "parse_provide_bundle",
    "parse_search",
    "parse_search_result_bundle",
    "parse_transaction_response",
    "problems_to_operation_outcome",
    "relations",
    "resource_id_for",
    "search_result_bundle",
    "submission_set_to_list",
    "to_search_params",
]
