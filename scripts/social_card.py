"""Draw the clinic's default social card (static/img/social-card.png), 1200 x 630.

Made from the site's own assets: the name and tagline of clinic/content.py, the brand
colours of static/css/site.css and the favicon's mark. Run it with `make social-card`
after changing any of them; the same inputs make the same bytes. Uses DejaVu Sans when
the machine has it, else Pillow's own font (plainer, but the card is still drawn).
"""

import ast
import re
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "static" / "img" / "social-card.png"
WIDTH, HEIGHT = 1200, 630
MARGIN = 80
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu")]


def brand_colours():
    """The --clinic-* custom properties of site.css, by name."""
    css = (ROOT / "static" / "css" / "site.css").read_text()
    return dict(re.findall(r"--clinic-([a-z-]+):\s*(#[0-9a-fA-F]{6})", css))


def clinic_words():
    """The name and tagline from clinic/content.py, read without importing Django."""
    tree = ast.parse((ROOT / "clinic" / "content.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PROFILE":
            values = {
                key.value: value.value
                for key, value in zip(node.value.keys, node.value.values, strict=True)
                if isinstance(key, ast.Constant) and isinstance(value, ast.Constant)
            }
            return values["name"], values["tagline"]
    raise SystemExit("clinic/content.py has no PROFILE")


def font(bold, size):
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in FONT_DIRS:
        if (folder / name).exists():
            return ImageFont.truetype(str(folder / name), size)
    return ImageFont.load_default(size=size)


def wrapped(draw, text, face, width):
    """`text` broken into lines no wider than `width` pixels."""
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and draw.textlength(candidate, font=face) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return [*lines, line] if line else lines


def draw_card():
    colours = brand_colours()
    name, tagline = clinic_words()
    card = Image.new("RGB", (WIDTH, HEIGHT), colours["primary"])
    draw = ImageDraw.Draw(card)
    # The favicon's mark, large: an arch of shoulders under the accent circle.
    mark_x, mark_y = MARGIN, MARGIN
    draw.rounded_rectangle(
        (mark_x, mark_y, mark_x + 120, mark_y + 120), radius=24, fill=colours["primary-dark"]
    )
    draw.arc(
        (mark_x + 26, mark_y + 50, mark_x + 94, mark_y + 140), 200, 340, fill="#ffffff", width=12
    )
    draw.ellipse((mark_x + 46, mark_y + 20, mark_x + 74, mark_y + 48), fill=colours["accent"])
    # The name, then the tagline, wrapped to the card.
    text_width = WIDTH - 2 * MARGIN
    title_face, tag_face = font(True, 76), font(False, 40)
    y = 250
    for line in wrapped(draw, name, title_face, text_width):
        draw.text((MARGIN, y), line, font=title_face, fill="#ffffff")
        y += 92
    y += 16
    for line in wrapped(draw, tagline, tag_face, text_width):
        draw.text((MARGIN, y), line, font=tag_face, fill=colours["tint"])
        y += 52
    # The accent band along the foot, as on the site's buttons.
    draw.rectangle((0, HEIGHT - 24, WIDTH, HEIGHT), fill=colours["accent"])
    return card


def main():
    card = draw_card()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    card.save(OUT, format="PNG", optimize=True)
    print(f"Wrote {OUT.relative_to(ROOT)} ({WIDTH} x {HEIGHT})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
