"""Publish + retrieve of one large document over loopback: memory and throughput.

Starts a real hub process (with a development PKI), publishes a SIZE-MB document as MTOM (streamed from a file),
retrieves it as MTOM (streamed to a file) — both requests signed with WS-Security as the GP, the document bound to
the signature by its hash and size in the signed metadata — and reports:

- peak RSS growth of this (client) process and of the hub process (goal ≤ 64 MB each);
- publish and retrieve throughput relative to a baseline measured in the same run: SHA-256 hashing + writing the
  same bytes to disk with fsync (goal ≥ 50 %).

Run: ``python bench/bench_transfer.py [--size-mb 100]`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import NO_RECORDING
from rsb_connector.hub.population import SEED_PATIENTS, SEED_PROFESSIONALS
from rsb_connector.metadata.builder import new_document, new_submission, professional_author
from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import init_pki
from rsb_connector.security.wssec import sign_envelope
from rsb_connector.security.xml import parse_xml
from rsb_connector.testing import LiveHub
from rsb_connector.xds import constants as c
from rsb_connector.xds import iti41, iti43, soap
from rsb_connector.xds.mtom import MtomParser, MtomWriter, OutgoingAttachment
from rsb_connector.xds.parts import XopRef

CHUNK = 1 << 20


def rss_mb(pid: int | None = None) -> tuple[float, float]:
    """(current RSS, peak RSS) in MB from /proc."""
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def reset_peak(pid: int | None = None) -> None:
    """Reset the kernel's peak RSS counter (Linux ≥ 4.0) so VmHWM measures from now on."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid or 'self'}/clear_refs").write_text("5")


def make_file(path: Path, size: int) -> None:
    block = os.urandom(CHUNK)
    with path.open("wb") as fh:
        written = 0
        while written < size:
            n = min(CHUNK, size - written)
            fh.write(block[:n])
            written += n


def baseline(src: Path, dst: Path) -> float:
    """Seconds to SHA-256 the file while writing it to disk, with fsync: the floor any store must pay."""
    started = time.perf_counter()
    h = hashlib.sha256()
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(CHUNK):
            h.update(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return time.perf_counter() - started


def publish(http: httpx.Client, path: Path, patient: str, identity: Identity) -> tuple[float, str]:
    author = professional_author(SEED_PROFESSIONALS[0].nihii, family="Claes")  # the GP who signs
    entry = new_document(
        path, patient=patient, document_type="report", mime_type="application/octet-stream", author=author
    )
    submission = new_submission([entry])
    payload = iti41.build_request(submission, {entry.entry_uuid: XopRef("big@bench")})
    envelope = soap.build_envelope(payload, action=c.ACTION_ITI41, message_id=soap.new_message_id())
    root = soap.serialize(sign_envelope(envelope, identity))
    writer = MtomWriter(root, [OutgoingAttachment("big@bench", path)], action=c.ACTION_ITI41)
    headers = {"content-type": writer.content_type, "content-length": str(writer.content_length)}
    started = time.perf_counter()
    response = http.post("/xds/repository", content=iter(writer), headers=headers)
    elapsed = time.perf_counter() - started
    reader = MtomParser(response.headers["content-type"], spool_dir=path.parent)
    reader.feed(response.content)
    root = reader.close().root
    result = iti41.parse_response(soap.parse_envelope(parse_xml(root)).payload)  # type: ignore[arg-type]
    if result.status != c.STATUS_SUCCESS:
        sys.exit(f"publish failed: {result.problems}")
    return elapsed, entry.unique_id or ""


def retrieve(http: httpx.Client, uid: str, out_dir: Path, identity: Identity) -> tuple[float, Path]:
    payload = iti43.build_request([iti43.DocumentRequest(c.DEFAULT_REPOSITORY_UNIQUE_ID, uid)])
    envelope = soap.build_envelope(payload, action=c.ACTION_ITI43, message_id=soap.new_message_id())
    writer = MtomWriter(soap.serialize(sign_envelope(envelope, identity)), [], action=c.ACTION_ITI43)
    started = time.perf_counter()
    with http.stream(
        "POST", "/xds/repository", content=writer.to_bytes(), headers={"content-type": writer.content_type}
    ) as response:
        parser = MtomParser(response.headers["content-type"], spool_dir=out_dir)
        for chunk in response.iter_raw(CHUNK):
            parser.feed(chunk)
        message = parser.close()
    elapsed = time.perf_counter() - started
    (attachment,) = message.attachments.values()
    return elapsed, attachment.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=100)
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="rsb-bench-") as tmp:
        tmp_dir = Path(tmp)
        src = tmp_dir / "document.bin"
        make_file(src, size)
        base_s = min(baseline(src, tmp_dir / f"copy{i}.bin") for i in range(2))
        for i in range(2):
            (tmp_dir / f"copy{i}.bin").unlink()
        pki = init_pki(tmp_dir / "pki")
        gp = pki.load_identity("gp")
        with (
            LiveHub(tmp_dir / "hub", seed=True, pki=pki, extra_args=NO_RECORDING) as hub,
            httpx.Client(base_url=hub.url, timeout=600) as http,
        ):
            assert hub.process is not None
            hub_pid = hub.process.pid
            client_rss0, _ = rss_mb()
            hub_rss0, _ = rss_mb(hub_pid)
            reset_peak()
            reset_peak(hub_pid)
            publish_s, uid = publish(http, src, SEED_PATIENTS[0].ssin, gp)
            retrieve_s, out = retrieve(http, uid, tmp_dir, gp)
            _, client_peak = rss_mb()
            _, hub_peak = rss_mb(hub_pid)
            ru_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ok = out.stat().st_size == size and _sha256(out) == _sha256(src)
    mb = size / 1024 / 1024
    print(f"document: {mb:.0f} MB, round trip byte-exact: {ok}")
    print(f"baseline  sha256+write+fsync: {mb / base_s:8.1f} MB/s")
    for name, seconds in (("publish   (ITI-41 MTOM)", publish_s), ("retrieve  (ITI-43 MTOM)", retrieve_s)):
        print(f"{name}     : {mb / seconds:8.1f} MB/s  = {base_s / seconds:6.1%} of baseline (goal ≥ 50%)")
    print(f"client peak RSS growth      : {client_peak - client_rss0:8.1f} MB (goal ≤ 64; ru_maxrss {ru_peak:.0f} MB)")
    print(f"hub peak RSS growth         : {hub_peak - hub_rss0:8.1f} MB (goal ≤ 64)")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


if __name__ == "__main__":
    main()
