"""Markdown to safe HTML: staff write Markdown, readers get sanitised HTML only."""

import re
import xml.etree.ElementTree as etree  # nosec B405 # builds elements, never parses XML

import markdown
import nh3
from markdown.inlinepatterns import InlineProcessor

CITATION_PATTERN = r"\[@(\d{1,3})\]"

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
    "h2", "h3", "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "s", "span", "strong",
    "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "class", "id"},
    "abbr": {"title"},
    "sup": {"class"},
    "ol": {"start"},
    "td": {"align"},
    "th": {"align"},
    **{f"h{level}": {"id"} for level in range(2, 7)},
}


class _CitationProcessor(InlineProcessor):
    def handleMatch(self, match, data):
        number = match.group(1)
        sup = etree.Element("sup", {"class": "cite"})
        link = etree.SubElement(sup, "a", {"href": f"#ref-{number}", "class": "cite-link"})
        link.text = f"[{number}]"
        return sup, match.start(0), match.end(0)


class CitationExtension(markdown.Extension):
    """[@N] becomes a superscript link to reference N of the article's list."""

    def extendMarkdown(self, md):
        md.inlinePatterns.register(_CitationProcessor(CITATION_PATTERN, md), "citation", 175)


def cited_numbers(text):
    """The reference numbers that [@N] markers in `text` cite."""
    return {int(number) for number in re.findall(CITATION_PATTERN, text)}


def render_markdown(text):
    """Markdown → sanitised HTML: scripts, event handlers, iframes and javascript: links go."""
    html = markdown.markdown(
        text,
        extensions=["extra", "sane_lists", CitationExtension()],
        output_format="html",
    )
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
