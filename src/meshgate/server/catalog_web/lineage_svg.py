"""Lineage as a picture: columns of boxes from sources (left) to the product (right).

Drawn by hand as plain SVG text (a few rectangles, lines and labels), so the page needs no
graph library and no script; every label is XML-escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

BOX_WIDTH = 250
BOX_HEIGHT = 34
COLUMN_GAP = 80
ROW_GAP = 18


@dataclass(frozen=True)
class LineageNode:
    """One upstream item: a product (with its page) or a source table, and what feeds it."""

    label: str
    link: str | None
    upstream: tuple[LineageNode, ...]


def _levels(nodes: tuple[LineageNode, ...]) -> list[list[LineageNode]]:
    """Upstream items by distance from the product: [direct inputs, their inputs, ...]."""
    levels: list[list[LineageNode]] = []
    current = list(nodes)
    while current:
        unique = list(dict.fromkeys(current))
        levels.append(unique)
        current = [parent for node in unique for parent in node.upstream]
    return levels


def lineage_svg(product: str, upstream: list[LineageNode]) -> str:
    levels = [[LineageNode(product, None, tuple(upstream))], *_levels(tuple(upstream))]
    levels.reverse()  # sources on the left, the product on the right
    tallest = max(len(level) for level in levels)
    width = len(levels) * (BOX_WIDTH + COLUMN_GAP)
    height = tallest * (BOX_HEIGHT + ROW_GAP) + ROW_GAP
    places: dict[LineageNode, tuple[int, int]] = {}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" '
             f'aria-label={quoteattr("lineage of " + product)}>']
    for column, level in enumerate(levels):
        for row, node in enumerate(level):
            places.setdefault(node, (column * (BOX_WIDTH + COLUMN_GAP) + 10,
                                     row * (BOX_HEIGHT + ROW_GAP) + ROW_GAP))
    for node, (x, y) in places.items():
        for parent in node.upstream:
            px, py = places[parent]
            parts.append(f'<line x1="{px + BOX_WIDTH}" y1="{py + BOX_HEIGHT // 2}" x2="{x}" '
                         f'y2="{y + BOX_HEIGHT // 2}" stroke="#888" stroke-width="1.5"/>')
    for node, (x, y) in places.items():
        fill = "#e8f0fe" if node.link or node.label == product else "#f3f3f3"
        box = (f'<rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="6" '
               f'fill="{fill}" stroke="#557"/>'
               f'<text x="{x + 10}" y="{y + 22}" font-family="sans-serif" font-size="13">'
               f"{escape(node.label)}</text>")
        parts.append(f"<a href={quoteattr(node.link)}>{box}</a>" if node.link else box)
    parts.append("</svg>")
    return "".join(parts)
