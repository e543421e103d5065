"""What a clinician sees: the cards of three typical patients as HTML and PNG, for the documentation.

The detail is rendered as the CDS Hooks Sandbox renders it, CommonMark with GFM tables (markdown-it-py);
the PNG is a headless Chromium screenshot of that page. `make card-pictures` writes docs/cards/.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from markdown_it import MarkdownIt

from tests import card_quality
from tests import test_corpus as corpus
from tests.conftest import AS_OF, EXAMPLES

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "cards"
COLOURS = {"info": "#1f6fd1", "warning": "#d98b00", "critical": "#c62828"}
WIDTH = 820
STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; font-size: 14px;
       color: #222; background: #f3f4f6; margin: 0; padding: 16px; width: WIDTHpx; }
h1 { font-size: 16px; margin: 0 0 12px; }
.card { background: #fff; border: 1px solid #d0d4da; border-left: 6px solid; border-radius: 4px;
        padding: 12px 16px; margin-bottom: 14px; }
.summary { font-weight: 600; font-size: 15px; margin-bottom: 6px; }
.indicator { font-size: 11px; text-transform: uppercase; letter-spacing: .05em; font-weight: 700; }
.detail table { border-collapse: collapse; margin: 6px 0; }
.detail th, .detail td { border: 1px solid #c9ced6; padding: 3px 7px; text-align: left; }
.detail th { background: #eef0f3; }
.detail p { margin: 6px 0; }
.source { color: #555; font-size: 12px; margin-top: 8px; }
button { background: #fff; border: 1px solid #1f6fd1; color: #1f6fd1; border-radius: 3px; padding: 4px 8px;
         margin: 6px 6px 0 0; font-size: 12px; }
.links a { font-size: 12px; margin-right: 10px; }
""".replace("WIDTH", str(WIDTH - 32))


def _markdown() -> MarkdownIt:
    """CommonMark plus GFM tables, raw HTML off: what the Sandbox's renderer shows."""
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def card_html(card: dict, markdown: MarkdownIt) -> str:
    colour = COLOURS[card["indicator"]]
    suggestions = "".join(f"<button>{html.escape(s['label'])}</button>" for s in card.get("suggestions", ()))
    links = "".join(
        f'<a href="{html.escape(link["url"])}">{html.escape(link["label"])}</a>' for link in card.get("links", ())
    )
    source = card["source"]
    return (
        f'<div class="card" style="border-left-color:{colour}">'
        f'<div class="indicator" style="color:{colour}">{card["indicator"]}</div>'
        f'<div class="summary">{html.escape(card["summary"])}</div>'
        f'<div class="detail">{markdown.render(card.get("detail", ""))}</div>'
        f"<div>{suggestions}</div>"
        f'<div class="links">{links}</div>'
        f'<div class="source">Source: <a href="{html.escape(source.get("url", ""))}">'
        f"{html.escape(source['label'])}</a></div></div>"
    )


def page(title: str, cards: list[dict]) -> str:
    markdown = _markdown()
    body = "".join(card_html(c, markdown) for c in cards)
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def patients() -> list[tuple[str, str, dict, object]]:
    """(file stem, title, request, moment): three typical chart openings."""
    [whitney] = [r for r in corpus.synthea_rows("A_") if r["name"] == "Whitney Ortiz"]
    nadir, _ = min(corpus.cbc_times(whitney, {corpus.WBC}), key=lambda pair: pair[1]["valueQuantity"]["value"])
    example = json.loads((EXAMPLES / "patient-view-neutropenia.json").read_text(encoding="utf-8"))
    return [
        (
            "febrile-pancytopenic-on-clozapine",
            "Febrile, pancytopenic, on clozapine: cytopenia-review",
            card_quality.worst_patient(),
            AS_OF,
        ),
        ("afebrile-pancytopenia", "Afebrile pancytopenia (the example request): cytopenia-review", example, AS_OF),
        (
            "chemotherapy-leukopenia",
            "Synthea patient on chemotherapy at her white-count nadir: cytopenia-review",
            corpus.synthea_request(whitney),
            nadir,
        ),
    ]


def cards_of(body: dict, as_of) -> list[dict]:
    with contextlib.redirect_stderr(io.StringIO()):
        app = card_quality._app(as_of, None)
    return card_quality._post(app.test_client(), card_quality.DEFAULT_SERVICE, body)


def screenshot(page_file: Path, png: Path) -> None:
    """Headless Chromium at a tall window, then the empty space below the last card cropped away."""
    from PIL import Image, ImageChops

    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                shutil.which("chromium") or "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={WIDTH},4000",
                f"--screenshot={png}",
                page_file.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    image = Image.open(png).convert("RGB")
    background = Image.new("RGB", image.size, image.getpixel((image.width - 1, image.height - 1)))
    box = ImageChops.difference(image, background).getbbox()
    if box:
        image.crop((0, 0, image.width, min(image.height, box[3] + 16))).save(png, optimize=True)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for stem, title, body, as_of in patients():
        page_file = OUT / f"{stem}.html"
        page_file.write_text(page(title, cards_of(body, as_of)), encoding="utf-8")
        screenshot(page_file, OUT / f"{stem}.png")
        print(f"wrote {page_file.relative_to(ROOT)} and {stem}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
