"""Seed the two known document profiles and a few document types.

Values are copied here (not imported from ``issuer.pdf.rules``) so this migration keeps meaning
the same thing if the engine's defaults change later.
"""

from django.db import migrations

A4_WIDTH, A4_HEIGHT = 595.276, 841.89

PROFILES = [
    {
        "name": "default",
        "description": "Any page size and PDF version (old files are upgraded to 1.7), up to 20 MB.",
        "max_bytes": 20 * 1024 * 1024,
        "page_width": None,
        "page_height": None,
        "min_pdf_version": "",
    },
    {
        "name": "cpns",
        "description": "BKN civil-service applications: A4, PDF 1.6 or later, at most 800 KB.",
        "max_bytes": 800 * 1024,
        "page_width": A4_WIDTH,
        "page_height": A4_HEIGHT,
        "min_pdf_version": "1.6",
    },
]

DOCUMENT_TYPES = [
    ("surat-pernyataan", "Surat Pernyataan"),
    ("surat-perjanjian", "Surat Perjanjian"),
    ("surat-kuasa", "Surat Kuasa"),
    ("kuitansi", "Kuitansi"),
    ("akta-notaris", "Akta Notaris"),
    ("dokumen-transaksi", "Dokumen Transaksi"),
    ("dokumen-lain-lain", "Dokumen Lain-lain"),
]


def seed(apps, schema_editor):
    StampProfile = apps.get_model("issuer", "StampProfile")
    DocumentType = apps.get_model("issuer", "DocumentType")
    for spec in PROFILES:
        StampProfile.objects.update_or_create(
            name=spec["name"], defaults={k: v for k, v in spec.items() if k != "name"}
        )
    for code, name in DOCUMENT_TYPES:
        DocumentType.objects.update_or_create(code=code, defaults={"name": name})


def unseed(apps, schema_editor):
    apps.get_model("issuer", "StampProfile").objects.filter(name__in=[p["name"] for p in PROFILES]).delete()
    apps.get_model("issuer", "DocumentType").objects.filter(code__in=[c for c, _ in DOCUMENT_TYPES]).delete()


class Migration(migrations.Migration):
    dependencies = [("issuer", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
