"""similarity.json and similarity.html: the batch's similar pairs, for the instructor and the review queue.

similarity.json is a list of pairs, highest score first; the review queue reads exactly the keys
"a", "b", "score" and "flagged" of each, the rest (scores per kind, regions, identical output lines)
is evidence. similarity.html shows the same pairs with side-by-side excerpts. Never a grade.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from grader.load import Submission
from grader.report.render import environment, report_filename
from grader.review.similarity import Pair, compare_batch
from grader.rubric import SimilaritySpec

log = logging.getLogger(__name__)

JSON_NAME, HTML_NAME = "similarity.json", "similarity.html"


@dataclass
class SimilarityFiles:
    html: Path
    json: Path
    pairs: int  # listed
    flagged: int


def write_similarity(
    subs: list[Submission], spec: SimilaritySpec, out_dir: Path, *, template_dir: Path | None = None
) -> SimilarityFiles:
    """Compare the batch's hand-ins and write out_dir/similarity.json and similarity.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = compare_batch(subs, spec)
    json_path = out_dir / JSON_NAME
    json_path.write_text(json.dumps([pair_data(p) for p in pairs], ensure_ascii=False), encoding="utf-8")
    env = environment(Path(template_dir) if template_dir else None)
    html = env.get_template("similarity.html").render(similarity_context(pairs, len(subs), spec))
    html_path = out_dir / HTML_NAME
    html_path.write_text(html, encoding="utf-8")
    flagged = sum(p.flagged for p in pairs)
    log.info("similarity: %d pairs listed, %d flagged", len(pairs), flagged)
    return SimilarityFiles(html_path, json_path, len(pairs), flagged)


def pair_data(pair: Pair) -> dict:
    """One pair as similarity.json stores it: every field, regions without their excerpts (the HTML
    shows those; the JSON stays small enough for the review queue to read at once)."""
    data = {k: v for k, v in vars(pair).items() if k != "regions"}
    data["regions"] = [{"a_where": r.a_where, "b_where": r.b_where, "tokens": r.tokens} for r in pair.regions]
    return data


def similarity_context(pairs: list[Pair], handins: int, spec: SimilaritySpec) -> dict:
    return {
        "pdf": False,
        "handins": handins,
        "flagged": sum(p.flagged for p in pairs),
        "template": spec.template.name if spec.template else None,
        "spec": spec,
        "pairs": [
            {"pair": p, "rank": i + 1, "a_href": quote(report_filename(p.a)), "b_href": quote(report_filename(p.b)),
             "percent": f"{100 * p.score:.0f} %"}
            for i, p in enumerate(pairs)
        ],
    }


def similarity_link(out_dir: Path) -> dict | None:
    """The class summary's link to a similarity report written earlier (re-renders), or None."""
    try:
        pairs = json.loads((Path(out_dir) / JSON_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(pairs, list):
        return None
    return {"href": HTML_NAME, "pairs": len(pairs), "flagged": sum(1 for p in pairs if isinstance(p, dict) and p.get("flagged"))}


def similarity_step(subs: list[Submission], spec: SimilaritySpec, out_dir: Path) -> dict | None:
    """The batch's similarity step: write the files and return the class summary's link to them
    ({"href", "pairs", "flagged"}), or None when it failed. A failure here is logged and costs only the
    similarity report: every hand-in's result is already stored."""
    try:
        files = write_similarity(subs, spec, out_dir)
    except Exception:
        log.exception("similarity step failed; the batch's results are not affected")
        return None
    return {"href": HTML_NAME, "pairs": files.pairs, "flagged": files.flagged}
