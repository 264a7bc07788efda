"""The goals of issue 19, as each benchmark reports them: one small convention shared by the
scripts and bench/run's closing table.

Each results file carries `"goals": [...]`, one entry per figure with a goal (or shown beside
one): what was measured, the figure, its baseline from the same run, the ratio of the two, the
goal, and whether it was met (true/false; null when not measured or when the row is context for
another row rather than a goal of its own)."""

from __future__ import annotations


def goal(what: str, figure: str, baseline: str | None = None, ratio: float | None = None,
         target: str | None = None, met: bool | None = None, note: str | None = None,
         value: float | None = None) -> dict:
    """One row. `figure` and `baseline` are as printed ("7,264 req/s"); `value` is the figure's
    number, `ratio` figure/baseline (or whatever the goal compares), `target` the goal as
    written in the issue."""
    return {"what": what, "figure": figure, "value": value, "baseline": baseline,
            "ratio": None if ratio is None else round(ratio, 4), "goal": target, "met": met,
            "note": note}


def not_measured(what: str, target: str | None, why: str) -> dict:
    return goal(what, "not measured", target=target, met=None, note=why)


def verdict(met: bool | None, target: str | None) -> str:
    if target is None:
        return ""
    return "met" if met is True else ("MISSED" if met is False else "not measured")


def table(rows: list[dict]) -> list[str]:
    """The rows as aligned text lines (what, figure, baseline, ratio, goal, verdict)."""
    head = ["what", "figure", "baseline (same run)", "ratio", "goal", "verdict"]
    body = []
    for r in rows:
        ratio = r.get("ratio")
        body.append([r["what"], r["figure"] or "-", r.get("baseline") or "-",
                     "-" if ratio is None else f"{ratio:,.3g}", r.get("goal") or "-",
                     verdict(r.get("met"), r.get("goal"))])
    widths = [max([len(h), *(len(b[i]) for b in body)]) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa
    out = [line(head), "  ".join("-" * w for w in widths)]
    out += [line(b) for b in body]
    notes = [(r["what"], r["note"]) for r in rows if r.get("note")]
    for what, note in notes:
        out.append(f"  {what}: {note}")
    return out


def print_table(rows: list[dict], title: str = "goals (issue 19)") -> None:
    print(f"\n{title}")
    for ln in table(rows):
        print(ln)
