"""The core at work, no hub needed: Belgian identifiers, a document's metadata from five arguments, and what
validation says about a bad one.

Run: ``python examples/core_walkthrough.py`` (``make demo`` runs it as its first chapter).
"""

from __future__ import annotations

from rsb_connector.errors import InvalidIdentifier
from rsb_connector.identifiers import Nihii, Ssin
from rsb_connector.metadata.builder import new_document, new_submission, professional_author
from rsb_connector.metadata.rules import validate_submission


def main() -> None:
    print("1. Belgian identifiers")
    patient = Ssin("73.03.29-298.95")
    print(f"   SSIN {patient.masked}: valid, born {patient.birth_date}, XDS patientId {patient.masked}^^^&…5.1&ISO")
    doctor = Nihii("1-14787-61-004")
    print(f"   NIHII {doctor}: profession {doctor.profession!r}, qualification {doctor.qualification}")
    for bad in ("73032929894", "73132929895", "7303292989"):
        try:
            Ssin(bad)
        except InvalidIdentifier as exc:
            print(f"   refused: {exc}")

    print("\n2. A consultation report's metadata from five arguments")
    report = b"%PDF-1.7\n% a consultation report\n"
    entry = new_document(
        report,
        patient=patient,
        document_type="contactreport",
        mime_type="application/pdf",
        author=professional_author(doctor, family="Janssens", given="An"),
    )
    submission = new_submission([entry])
    print(f"   classCode {entry.class_code}, typeCode {entry.type_code}")
    print(f"   formatCode {entry.format_code}, confidentiality {[str(c) for c in entry.confidentiality_codes]}")
    print(f"   facility {entry.healthcare_facility_type_code}, practice setting {entry.practice_setting_code}")
    print(f"   creationTime {entry.creation_time} (UTC DTM), hash {entry.hash}, size {entry.size} bytes")
    problems = validate_submission(submission)
    print(f"   ITI-41 rules: {len(problems)} problems")

    print("\n3. The same submission, damaged: every problem at once, with its XDS code and where it is")
    entry.class_code = None
    entry.creation_time = "2024-12-24"
    entry.service_start_time, entry.service_stop_time = "20241224", "20241201"
    entry.hash = "not-a-sha1"
    submission.document_ids.clear()
    for problem in validate_submission(submission):
        print(f"   {problem.code:<32} {problem.path}")
        print(f"   {'':<32} {problem.message}")


if __name__ == "__main__":
    main()
