"""Stamping throughput: our engine against a straightforward pyHanko call, in one process.

Run from the repository root:

    .venv/bin/python bench/stamping.py

It builds three documents in memory (a one-page text A4, an ~800 KB scanned A4, a 10-page text
file), stamps each with (a) pyHanko as its documentation shows - ``SimpleSigner.load`` from files
and a ``PdfSigner`` with a ``QRStampStyle`` per document, certification signature, PAdES - and
(b) ``issuer``'s engine (``inspect_document`` + ``StampEngine.stamp``, i.e. the full work from the
uploaded bytes), and prints stamps/s on one core for each and the ratio.  It then stamps the scan
1,000 times and prints the resident set size before and after, to show memory stays flat.

With SoftHSM2 installed (Debian ``softhsm2``; ``scripts/ensure-browser.sh``), it then stamps the
same documents with the engine signing through PKCS#11 (an RSA-2048 key on a SoftHSM2 token in a
temporary directory, ``issuer.signing.load_pkcs11``) and prints stamps/s next to the file key's
and their ratio; without it, it says so and skips that table.

Bounded to well under two minutes.  The last line is the headline figure for the 800 KB scan.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter  # noqa: E402
from pyhanko.sign import fields, signers  # noqa: E402
from pyhanko.sign.fields import MDPPerm  # noqa: E402
from pyhanko.stamp import QRStampStyle  # noqa: E402

from issuer.pdf import inspect_document  # noqa: E402
from issuer.serials import new_serial  # noqa: E402
from issuer.signing import StampEngine, TokenConfig, load_or_create_dev_keys, load_pkcs11  # noqa: E402
from issuer.signing.keys import DEV_ROOT_CERT, DEV_SIGNING_CERT, DEV_SIGNING_KEY, load_certificates_pem  # noqa: E402
from tests.fixtures.pdfs import factory  # noqa: E402
from tests.fixtures.softhsm import make_token, softhsm_module  # noqa: E402

VERIFY_URL = "https://verify.e-meterai.example/v"
BOX = (420.0, 60.0, 520.0, 160.0)
MAX_BYTES = 20 * 1024 * 1024
SIGNED_AT = dt.datetime(2024, 6, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=7)))


def rss_kib() -> int:
    with open("/proc/self/status") as status:  # noqa: PTH123
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def rate(work: Callable[[], object], *, seconds: float, max_runs: int) -> float:
    """Runs per second of ``work`` on this (single) core, after one warm-up run."""
    work()
    runs = 0
    started = time.perf_counter()
    while runs < max_runs and (runs < 3 or time.perf_counter() - started < seconds):
        work()
        runs += 1
    return runs / (time.perf_counter() - started)


def pyhanko_stamper(key_dir: Path) -> Callable[[bytes], bytes]:
    def sign(data: bytes) -> bytes:
        serial = new_serial()
        signer = signers.SimpleSigner.load(
            str(key_dir / DEV_SIGNING_KEY),
            str(key_dir / DEV_SIGNING_CERT),
            ca_chain_files=(str(key_dir / DEV_ROOT_CERT),),
        )
        meta = signers.PdfSignatureMetadata(
            field_name=f"eMeterai_{serial}",
            reason=f"[{serial}] e-Meterai Surat Pernyataan",
            location="Jakarta",
            certify=True,
            docmdp_permissions=MDPPerm.NO_CHANGES,
            subfilter=fields.SigSeedSubFilter.PADES,
        )
        style = QRStampStyle(stamp_text="METERAI ELEKTRONIK\n10000\n%(serial)s")
        pdf_signer = signers.PdfSigner(
            meta,
            signer=signer,
            stamp_style=style,
            new_field_spec=fields.SigFieldSpec(f"eMeterai_{serial}", on_page=0, box=BOX),
        )
        output = pdf_signer.sign_pdf(
            IncrementalPdfFileWriter(io.BytesIO(data)),
            appearance_text_params={"url": f"{VERIFY_URL}/{serial}", "serial": serial},
        )
        return output.getvalue()

    return sign


def engine_stamper(engine: StampEngine) -> Callable[[bytes], bytes]:
    def sign(data: bytes) -> bytes:
        info = inspect_document(data, max_bytes=MAX_BYTES)
        result = engine.stamp(
            data, info=info, page=1, box=BOX, serial=new_serial(), reason="Surat Pernyataan",
            location="Jakarta", signed_at=SIGNED_AT,
        )  # fmt: skip
        return result.pdf

    return sign


def pkcs11_table(documents: dict[str, bytes], file_rates: dict[str, float], directory: Path) -> None:
    """Stamps/s with the key on a SoftHSM2 token, next to the file key's figure."""
    if softhsm_module() is None:
        print("PKCS#11: SoftHSM2 is not installed (Debian softhsm2), skipped")
        return
    token = make_token(directory / "softhsm")
    cert_path = token.import_key("bench-signing")
    certificates = load_certificates_pem(cert_path, [token.root_path])
    keys = load_pkcs11(TokenConfig(token.module, token.label, "bench-signing", token.pin), certificates)
    stamper = engine_stamper(StampEngine(keys, VERIFY_URL))
    print(f"\nPKCS#11 through SoftHSM2 ({token.module}), RSA-2048, the same engine:")
    print(f"{'document':<18} {'file key/s':>11} {'pkcs11/s':>10} {'ratio':>7}")
    for name, data in documents.items():
        token_rate = rate(lambda data=data: stamper(data), seconds=3.0, max_runs=3000)
        print(f"{name:<18} {file_rates[name]:>11.1f} {token_rate:>10.1f} {token_rate / file_rates[name]:>6.2f}x")


def main() -> None:
    documents = {
        "text A4 (1 page)": factory.text_pdf(),
        "800 KB scan": factory.scanned_pdf(),
        "text (10 pages)": factory.text_pdf(pages=10),
    }
    with tempfile.TemporaryDirectory() as directory:
        key_dir = Path(directory)
        keys = load_or_create_dev_keys(key_dir)
        engine = StampEngine(keys, VERIFY_URL)
        ours = engine_stamper(engine)
        theirs = pyhanko_stamper(key_dir)
        print(f"{'document':<18} {'size':>9} {'engine/s':>10} {'pyhanko/s':>10} {'ratio':>7}")
        results = {}
        for name, data in documents.items():
            engine_rate = rate(lambda data=data: ours(data), seconds=3.0, max_runs=3000)
            pyhanko_rate = rate(lambda data=data: theirs(data), seconds=4.0, max_runs=200)
            results[name] = (engine_rate, pyhanko_rate)
            print(
                f"{name:<18} {len(data) / 1024:>7.0f}KB {engine_rate:>10.1f} {pyhanko_rate:>10.1f} "
                f"{engine_rate / pyhanko_rate:>6.1f}x"
            )
        scan = documents["800 KB scan"]
        before = rss_kib()
        for _ in range(1000):
            ours(scan)
        after = rss_kib()
        print(f"RSS over 1,000 engine stamps of the scan: before {before / 1024:.1f} MiB, after {after / 1024:.1f} MiB")
        pkcs11_table(documents, {name: figures[0] for name, figures in results.items()}, key_dir)
        engine_rate, pyhanko_rate = results["800 KB scan"]
        print(
            f"800 KB scan: engine {engine_rate:.0f} stamps/s/core, pyhanko {pyhanko_rate:.1f} stamps/s/core, "
            f"ratio {engine_rate / pyhanko_rate:.1f}"
        )


if __name__ == "__main__":
    main()
