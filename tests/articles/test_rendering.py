"""Staff Markdown becomes safe HTML; citation markers link to the numbered references."""

from html.parser import HTMLParser

import pytest

from articles.rendering import render_markdown

HOSTILE = [
    ("<script>alert('x')</script>Hello", "<script"),
    ('<a href="javascript:alert(1)">click</a>', "javascript:"),
    ("[click](javascript:alert(1))", "javascript:"),
    ('<img src="x.png" onerror="alert(1)">', "onerror"),
    ('<p onclick="alert(1)">Tap</p>', "onclick"),
    ('<iframe src="https://evil.example"></iframe>', "<iframe"),
    ('<a href="#" style="position:fixed">x</a>', "style="),
    ("<svg><script>alert(1)</script></svg>", "alert"),
    ('Text{: onmouseover="alert(1)" }', "onmouseover"),
    ("<object data='x.swf'></object><embed src='x'>", "<object"),
]


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def elements(html):
    parser = _Elements()
    parser.feed(html)
    return parser.elements


@pytest.mark.parametrize("body", [body for body, _ in HOSTILE])
def test_hostile_markup_renders_inert(body):
    for tag, attrs in elements(render_markdown(body)):
        assert tag not in {"script", "iframe", "object", "embed", "svg", "img", "style"}
        assert not [name for name in attrs if name.startswith("on") or name == "style"]
        for name in ("href", "src"):
            assert not (attrs.get(name) or "").strip().lower().startswith("javascript:")


def test_ordinary_markdown_survives_sanitising():
    html = render_markdown(
        "## Heading\n\n- one\n- two\n\n1. first\n\n**bold** [link](https://example.org)"
    )
    assert "<h2>Heading</h2>" in html
    assert "<ul>" in html and "<ol>" in html and "<strong>bold</strong>" in html
    assert '<a href="https://example.org" rel="noopener noreferrer">link</a>' in html


def test_citation_markers_link_to_their_reference():
    found = elements(render_markdown("Tight calves matter [@1][@2]."))
    links = [attrs["href"] for tag, attrs in found if tag == "a"]
    assert links == ["#ref-1", "#ref-2"]
    assert [tag for tag, _ in found].count("sup") == 2


def test_citation_inside_code_is_left_as_text():
    assert "#ref-1" not in render_markdown("`[@1]`")


@pytest.mark.django_db
def test_the_page_serves_html_rendered_once_at_save(client, clinic, make_article):
    from articles.models import Article

    article = make_article(body="First **version**")
    # Change the Markdown behind the service's back: the page must keep the stored HTML.
    Article.objects.filter(pk=article.pk).update(body="Changed *directly*")
    page = client.get(article.get_absolute_url()).content.decode()
    assert "<strong>version</strong>" in page and "<em>directly</em>" not in page


@pytest.mark.django_db
def test_a_hostile_body_is_inert_on_the_page(client, clinic, make_article):
    article = make_article(
        body='<script>alert(1)</script><a href="javascript:x()" onclick="y()">z</a>'
    )
    page = client.get(article.get_absolute_url()).content.decode()
    body = page.split('<div class="article-body">', 1)[1].split("</div>", 1)[0]
    assert "<script" not in body and "javascript:" not in body and "onclick" not in body
