"""XDS.b wire constants: namespaces, actions, classification schemes, identification schemes, statuses.

Values are from IHE ITI TF-3 4.2 and ebRS 3.0 (see ``domain.md``). Everything XDS-specific that is a literal
lives here, so a newcomer finds it in one place.
"""

from __future__ import annotations

from typing import Final

# --------------------------------------------------------------------------------------------- namespaces
SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
WSA: Final = "http://www.w3.org/2005/08/addressing"
XOP: Final = "http://www.w3.org/2004/08/xop/include"
RIM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
LCM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDSB: Final = "urn:ihe:iti:xds-b:2007"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
"""WS-Security 1.0 secext: the ``wsse:Security`` header and the WS-Security fault codes (``wsse:FailedCheck``...)."""
WSU: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
"""WS-Security utility: ``wsu:Id`` and ``wsu:Timestamp``."""

NSMAP: Final = {
    "soap": SOAP12,
    "wsa": WSA,
    "xop": XOP,
    "rim": RIM,
    "rs": RS,
    "lcm": LCM,
    "query": QUERY,
    "xdsb": XDSB,
}

# --------------------------------------------------------------------------------------------- actions
ACTION_ITI41: Final = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ACTION_ITI41_RESPONSE: Final = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
ACTION_ITI18: Final = "urn:ihe:iti:2007:RegistryStoredQuery"
ACTION_ITI18_RESPONSE: Final = "urn:ihe:iti:2007:RegistryStoredQueryResponse"
ACTION_ITI43: Final = "urn:ihe:iti:2007:RetrieveDocumentSet"
ACTION_ITI43_RESPONSE: Final = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
ACTION_ITI57: Final = "urn:ihe:iti:2010:UpdateDocumentSet"
ACTION_ITI57_RESPONSE: Final = "urn:ihe:iti:2010:UpdateDocumentSetResponse"
ACTION_ITI62: Final = "urn:ihe:iti:2010:DeleteDocumentSet"
ACTION_ITI62_RESPONSE: Final = "urn:ihe:iti:2010:DeleteDocumentSetResponse"
ACTION_FAULT: Final = "http://www.w3.org/2005/08/addressing/soap/fault"

# --------------------------------------------------------------------------------------------- object types
OBJECT_TYPE_STABLE_DE: Final = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
OBJECT_TYPE_ON_DEMAND_DE: Final = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
OBJECT_TYPE_CLASSIFICATION: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
OBJECT_TYPE_EXTERNAL_IDENTIFIER: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier"
OBJECT_TYPE_REGISTRY_PACKAGE: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"
OBJECT_TYPE_ASSOCIATION: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association"

SUBMISSION_SET_NODE: Final = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
FOLDER_NODE: Final = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"

# --------------------------------------------------------------------------------------------- DocumentEntry
DE_AUTHOR: Final = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_CLASS_CODE: Final = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_CONFIDENTIALITY_CODE: Final = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_EVENT_CODE: Final = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
DE_FORMAT_CODE: Final = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_HEALTHCARE_FACILITY_TYPE_CODE: Final = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE_SETTING_CODE: Final = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_TYPE_CODE: Final = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DE_PATIENT_ID: Final = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID: Final = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
DE_REFERENCE_ID_LIST_SLOT: Final = "urn:ihe:iti:xds:2013:referenceIdList"

# --------------------------------------------------------------------------------------------- SubmissionSet
SS_AUTHOR: Final = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE_CODE: Final = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_PATIENT_ID: Final = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_UNIQUE_ID: Final = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
SS_SOURCE_ID: Final = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"

# --------------------------------------------------------------------------------------------- Folder
FOLDER_CODE_LIST: Final = "urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5"
FOLDER_PATIENT_ID: Final = "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a"
FOLDER_UNIQUE_ID: Final = "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a"

# --------------------------------------------------------------------------------------------- responses
STATUS_SUCCESS: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
STATUS_FAILURE: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
STATUS_PARTIAL_SUCCESS: Final = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
SEVERITY_ERROR: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
SEVERITY_WARNING: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"

# --------------------------------------------------------------------------------------------- slots
SLOT_SUBMISSION_SET_STATUS: Final = "SubmissionSetStatus"
SLOT_ORIGINAL_STATUS: Final = "OriginalStatus"
SLOT_NEW_STATUS: Final = "NewStatus"

# Belgian defaults of this project (documented in docs/): the mock hub's repository and home community ids.
DEFAULT_REPOSITORY_UNIQUE_ID: Final = "1.3.6.1.4.1.21367.2017.3.1990000728.1"
