"""Reading pages as structure: JSON-LD blocks, links, meta tags."""

import json
from html.parser import HTMLParser


class PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.jsonld, self.meta, self.links, self.anchors = [], {}, [], []
        self._in_jsonld = False
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("type") == "application/ld+json":
            self._in_jsonld = True
            self.jsonld.append("")
        elif tag == "meta":
            key = attrs.get("property") or attrs.get("name")
            if key:
                self.meta[key] = attrs.get("content", "")
        elif tag == "link":
            self.links.append(attrs)
        elif tag == "a":
            self.anchors.append(attrs)
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        self._in_jsonld = self._in_title = False

    def handle_data(self, data):
        if self._in_jsonld:
            self.jsonld[-1] += data
        if self._in_title:
            self.title += data


def parse(response):
    parser = PageParser()
    parser.feed(response.content.decode())
    parser.jsonld = [json.loads(block) for block in parser.jsonld]
    return parser
