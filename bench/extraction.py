#!/usr/bin/env python3
"""Benchmark: reading scanned pages and e-invoice XML, against Tesseract alone on the same pages.

In one run, from a fixed seed (``--seed``), with no database:

1. Makes ``--pages`` scanned invoice pages from random ground truth (seller, tax code, number, date,
   amounts; Vietnamese and English labels), rendered as a scanner or a phone would give them: turned a
   few degrees, grey noise, JPEG artefacts.
2. Reads each with intake's reader (``portal.intake.readers.read_text``: the sandboxed child, cleaning,
   straightening, Tesseract ``vie+eng``), and with the bare ``tesseract`` command on the same JPEG
   (``vie+eng``, one thread), timing both; prints seconds per page and the ratio (goal: intake at most
   1.3x Tesseract alone).
3. Counts how many ground-truth values (the number, the tax code, the date, the total) appear exactly in
   each text: the share found is the accuracy of the text (field reading from it comes in a later step).
4. Parses ``--xml`` e-invoices generated from random ground truth with the quirks of real files and
   checks every field against the truth (goal: 100 %).

    .venv/bin/python bench/extraction.py                  # 12 scanned pages, 200 e-invoices
    .venv/bin/python bench/extraction.py --pages 30 --json /tmp/extraction.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
SELLERS = ["Công ty TNHH Hoa Sen", "Công ty CP Thép Việt", "Minh Anh Trading Co., Ltd", "Công ty TNHH Bình Minh",
           "Saigon Office Supplies JSC"]
ITEMS = ["Giấy in A4", "Mực in HP 12A", "Laptop Dell Latitude", "Dịch vụ vệ sinh văn phòng", "Thép hộp 40x80"]
GOAL_RATIO = 1.3


def _mst(rng: random.Random) -> str:
    from stdnum.vn import mst

    while True:
        body = f"{rng.randrange(1, 99):02d}{rng.randrange(10**7):07d}"
        check = mst.calc_check_digit(body)
        if len(check) == 1:
            return body + check


def truth(rng: random.Random) -> dict:
    lines = [(rng.choice(ITEMS), rng.randrange(1, 20), rng.randrange(10, 5000) * 1000)
             for _ in range(rng.randrange(1, 4))]
    before = sum(q * p for _, q, p in lines)
    vat = before * rng.choice((8, 10)) // 100
    return {"seller": rng.choice(SELLERS), "mst": _mst(rng), "number": f"{rng.randrange(1, 10**7):07d}",
            "date": f"{rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}/2026", "lines": lines,
            "before": before, "vat": vat, "total": before + vat}


def scanned_page(t: dict, rng: random.Random) -> bytes:
    """The invoice as a JPEG photo of a printed page: turned, noisy, compressed."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    font, small = ImageFont.truetype(FONT, 34), ImageFont.truetype(FONT, 28)
    page = Image.new("L", (1654, 1100), 255)
    draw = ImageDraw.Draw(page)
    y = 60
    for text, f in ((rng.choice(["HÓA ĐƠN GIÁ TRỊ GIA TĂNG", "VAT INVOICE"]), font),
                    (f"Đơn vị bán / Seller: {t['seller']}", small), (f"Mã số thuế / Tax code: {t['mst']}", small),
                    (f"Số / No.: {t['number']}    Ngày / Date: {t['date']}", small)):
        draw.text((80, y), text, font=f, fill=0)
        y += 70
    for name, qty, price in t["lines"]:
        draw.text((80, y), f"{name}  {qty} x {price:,}".replace(",", "."), font=small, fill=0)
        y += 55
    for label, value in (("Cộng tiền hàng", t["before"]), ("Thuế GTGT", t["vat"]), ("Tổng cộng / Total", t["total"])):
        draw.text((80, y), f"{label}: {value:,}".replace(",", "."), font=small, fill=0)
        y += 55
    page = page.rotate(rng.uniform(-3, 3), expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    noise = Image.effect_noise(page.size, 18)
    page = Image.blend(page, noise, 0.12).filter(ImageFilter.GaussianBlur(0.6))
    out = io.BytesIO()
    page.convert("RGB").save(out, "JPEG", quality=rng.randrange(55, 80))
    return out.getvalue()


def expected_values(t: dict) -> dict[str, str]:
    return {"number": t["number"], "tax code": t["mst"], "date": t["date"],
            "total": f"{t['total']:,}".replace(",", ".")}


def tesseract_alone(jpeg: bytes) -> tuple[str, float]:
    started = time.perf_counter()
    done = subprocess.run(["tesseract", "stdin", "stdout", "-l", "vie+eng", "--psm", "3"], input=jpeg,  # noqa: S607
                          capture_output=True, check=True, env={**os.environ, "OMP_THREAD_LIMIT": "1"})
    return done.stdout.decode("utf-8", "replace"), time.perf_counter() - started


def intake(jpeg: bytes) -> tuple[str, float]:
    from portal.intake.readers import read_text

    started = time.perf_counter()
    pages = read_text([jpeg], "image", max_input=64 * 2**20, timeout=240, max_pages=50)
    return "\f".join(p.text for p in pages or []), time.perf_counter() - started


def bench_scans(pages: int, rng: random.Random) -> dict:
    found = {"intake": 0, "tesseract": 0}
    fields = 0
    times: dict[str, list[float]] = {"intake": [], "tesseract": []}
    for _ in range(pages):
        t = truth(rng)
        jpeg = scanned_page(t, rng)
        for name, read in (("tesseract", tesseract_alone), ("intake", intake)):
            text, took = read(jpeg)
            times[name].append(took)
            found[name] += sum(value in text for value in expected_values(t).values())
        fields += len(expected_values(t))
    return {"pages": pages, "fields": fields,
            "intake_s_per_page": round(statistics.fmean(times["intake"]), 3),
            "tesseract_s_per_page": round(statistics.fmean(times["tesseract"]), 3),
            "ratio": round(statistics.fmean(times["intake"]) / statistics.fmean(times["tesseract"]), 2),
            "intake_accuracy": round(found["intake"] / fields, 3),
            "tesseract_accuracy": round(found["tesseract"] / fields, 3)}


def bench_xml(count: int, rng: random.Random) -> dict:
    from portal.intake import einvoice
    from tests.intake.test_einvoice import make_xml

    right = total = 0
    started = time.perf_counter()
    for i in range(count):
        t = truth(rng)
        lines = [("1", name, "Cái", str(q), str(p), "10%") for name, q, p in t["lines"]]
        quirks = {"wrap": i % 2 == 0, "namespace": i % 3 == 0, "currency": "đ" if i % 4 == 0 else None,
                  "float_amounts": i % 5 == 0}
        xml = make_xml({"template": "1", "series": "C26TAA", "number": str(int(t["number"])), "date": "2026-11-20",
                        "currency": "VND", "seller": (t["seller"], t["mst"]), "buyer": ("Công ty Khách", "0100233488"),
                        "lines": lines, "words": "…"}, **quirks)
        parsed = einvoice.parse(xml)
        before = sum(int(Decimal(q) * Decimal(p)) for _k, _n, _u, q, p, _r in lines)
        want = {"number": str(int(t["number"])), "seller": t["seller"], "mst": t["mst"], "currency": "VND",
                "lines": len(lines), "before": str(before), "date": "2026-11-20"}
        got = {"number": parsed.number, "seller": parsed.seller.name, "mst": parsed.seller.tax_code,
               "currency": parsed.currency, "lines": len(parsed.lines), "before": parsed.total_before_vat,
               "date": parsed.issued_on}
        right += sum(want[k] == got[k] for k in want)
        total += len(want)
    return {"files": count, "fields": total, "accuracy": round(right / total, 4),
            "ms_per_file": round((time.perf_counter() - started) / count * 1000, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--xml", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    scans = bench_scans(args.pages, rng)
    xml = bench_xml(args.xml, rng)
    print(f"scanned pages: {scans['pages']}, {scans['fields']} ground-truth values")
    print(f"  intake (sandbox, cleaning, straightening, Tesseract): {scans['intake_s_per_page']} s/page, "
          f"values found {scans['intake_accuracy']:.1%}")
    print(f"  Tesseract alone on the same JPEG:                    {scans['tesseract_s_per_page']} s/page, "
          f"values found {scans['tesseract_accuracy']:.1%}")
    print(f"  intake / Tesseract alone: {scans['ratio']:.2f}x (goal <= {GOAL_RATIO}x: "
          f"{'meets' if scans['ratio'] <= GOAL_RATIO else 'MISSES'} the goal)")
    print(f"e-invoice XML: {xml['files']} files, {xml['fields']} fields, {xml['accuracy']:.2%} exact "
          f"(goal 100 %), {xml['ms_per_file']} ms per file")
    if args.json:
        args.json.write_text(json.dumps({"scans": scans, "xml": xml}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
