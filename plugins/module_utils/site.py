# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""A website of its own for every host: generated from a seed kept on the host.

Part of the collection's stealth model. A page shared by every host of a
fleet gives the whole fleet away to whoever finds one proxy: so each host's
site is made from its own seed (32 random bytes, created once on the host and
kept), and two seeds give sites that differ in everything a crawler compares:

- the body of every page (title, text, dates, links);
- the page structure (one of several layouts, with class names drawn from
  the seed, as a site built with CSS modules has);
- the asset set (a fingerprinted stylesheet, as most build tools make, and a
  page set of its own);
- the favicon (a mirrored 5x5 pattern in the site's own colours), robots.txt,
  sitemap.xml and the 404 page.

Everything is deterministic in the seed: a re-run writes the same bytes.
Only the Python standard library is used (this runs on the host).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import colorsys
import datetime
import hashlib
import random
import struct

try:
    from html import escape as _escape
except ImportError:  # pragma: no cover - Python 2
    from cgi import escape as _escape  # pylint: disable=deprecated-method

# the page the collection installed before sites were generated: replaced, never kept as an operator's
LEGACY_MARKER = "Notes, photographs and reading lists collected on long walks."

THEMES = (
    {"kind": "notes", "first": ("Field", "Harbour", "Northern", "Quiet", "Slow", "Winter", "Lantern", "Coastal"),
     "second": ("Notes", "Journal", "Notebook", "Logbook", "Almanac", "Diary"),
     "things": ("tide tables", "old maps", "weather records", "lighthouses", "salt marshes", "ferry timetables",
                "sea birds", "cliff paths", "river mouths", "harbour walls"),
     "verbs": ("walked along", "sketched", "photographed", "read about", "returned to", "mapped"),
     "pages": ("about", "archive", "reading", "photos", "walks", "contact")},
    {"kind": "kitchen", "first": ("Copper", "Sunday", "Small", "Orchard", "Market", "Garden", "Old"),
     "second": ("Kitchen", "Pantry", "Table", "Recipes", "Larder", "Stove"),
     "things": ("sourdough", "plum jam", "bean stews", "pickled onions", "rye bread", "apple cake",
                "winter soups", "herb butter", "fermented cabbage", "oat biscuits"),
     "verbs": ("baked", "tested", "adapted", "cooked", "preserved", "simplified"),
     "pages": ("about", "recipes", "pantry", "seasons", "notes", "contact")},
    {"kind": "workshop", "first": ("Oak", "Bench", "Iron", "Maple", "Chisel", "Cedar", "Workbench"),
     "second": ("Workshop", "Studio", "Works", "Shop", "Joinery", "Bench Notes"),
     "things": ("hand planes", "dovetail joints", "chair legs", "spoon carving", "sharpening stones",
                "oil finishes", "a tool chest", "drawer runners", "birch plywood", "a shaving horse"),
     "verbs": ("restored", "built", "repaired", "measured", "finished", "sharpened"),
     "pages": ("about", "projects", "tools", "process", "gallery", "contact")},
    {"kind": "garden", "first": ("Hillside", "Walled", "Back", "Wild", "Green", "Kitchen", "Allotment"),
     "second": ("Garden", "Plot", "Borders", "Beds", "Greenhouse", "Meadow"),
     "things": ("tomato seedlings", "compost heaps", "runner beans", "dahlias", "leaf mould", "fruit cages",
                "rain barrels", "seed trays", "espalier pears", "wildflower strips"),
     "verbs": ("planted", "pruned", "watered", "divided", "sowed", "harvested"),
     "pages": ("about", "diary", "plants", "calendar", "seeds", "contact")},
    {"kind": "code", "first": ("Plain", "Tiny", "Careful", "Patient", "Small", "Honest", "Simple"),
     "second": ("Software", "Tools", "Code", "Systems", "Programs", "Utilities"),
     "things": ("log rotation", "a text editor", "shell scripts", "build caches", "config files", "unit tests",
                "a static site", "backup jobs", "date parsing", "error messages"),
     "verbs": ("rewrote", "profiled", "documented", "simplified", "debugged", "tested"),
     "pages": ("about", "projects", "writing", "talks", "uses", "contact")},
    {"kind": "photo", "first": ("Grain", "Silver", "Amber", "Long", "Late", "Soft", "Half"),
     "second": ("Light", "Frames", "Exposures", "Negatives", "Prints", "Darkroom"),
     "things": ("medium format film", "street corners", "night buses", "contact sheets", "rangefinders",
                "window light", "expired film", "harbour fog", "darkroom prints", "old lenses"),
     "verbs": ("developed", "printed", "scanned", "framed", "shot", "sorted"),
     "pages": ("about", "portfolio", "series", "prints", "gear", "contact")},
)

CONNECTORS = ("This week I", "Last month I", "Over the winter I", "Slowly, I", "At last I", "For a friend I",
              "Again I", "In the end I")
CODAS = ("and wrote down what worked.", "and kept the notes here.", "with mixed results.",
         "which took longer than planned.", "and learned a few things.", "before the light went.",
         "and will come back to it.", "on a rainy afternoon.")
OPENERS = ("A small site about %s.", "Notes on %s, kept for myself and anyone who finds them useful.",
           "Mostly %s, written up when there is time.", "An ongoing record of %s.")
ROBOTS = (
    "User-agent: *\nAllow: /\n",
    "User-agent: *\nDisallow: /drafts/\n",
    "User-agent: *\nDisallow: /tmp/\nDisallow: /search\n",
    "# robots.txt for {domain}\nUser-agent: *\nDisallow: /private/\nCrawl-delay: 10\n",
)
FONTS = ("Georgia, 'Times New Roman', serif", "'Helvetica Neue', Arial, sans-serif", "system-ui, sans-serif",
         "Palatino, 'Book Antiqua', serif", "Verdana, Geneva, sans-serif", "'Trebuchet MS', sans-serif")
LAYOUTS = ("column", "sidebar", "topnav", "cards")
EPOCH = datetime.date(2023, 1, 1)


def _hsl_to_hex(hue, saturation, lightness):
    """A #rrggbb colour."""
    red, green, blue = colorsys.hls_to_rgb(hue / 360.0, lightness / 100.0, saturation / 100.0)
    return "#%02x%02x%02x" % (int(red * 255), int(green * 255), int(blue * 255))


class _Site(object):
    def __init__(self, seed, domain, title=None):
        if not seed:
            raise ValueError("a site needs a seed")
        self.rng = random.Random(hashlib.sha256(("tgproxy-site:" + seed).encode("utf-8")).hexdigest())
        self.domain = domain
        rng = self.rng
        self.theme = rng.choice(THEMES)
        self.title = title or "%s %s" % (rng.choice(self.theme["first"]), rng.choice(self.theme["second"]))
        self.layout = rng.choice(LAYOUTS)
        self.hue = rng.randrange(360)
        self.font = rng.choice(FONTS)
        self.pretty_urls = rng.random() < 0.5
        # class names as CSS modules make them: a word and a hash of this site's own
        self.cls = dict((name, "%s-%s" % (name, "%04x" % rng.randrange(0x10000)))
                        for name in ("wrap", "head", "nav", "main", "side", "card", "foot", "meta", "lead"))
        count = rng.randint(3, len(self.theme["pages"]))
        self.pages = ["index"] + rng.sample(list(self.theme["pages"]), count)
        self.posts = self._posts()
        self.css_name = "assets/%s-%s.css" % (rng.choice(("site", "main", "style", "app", "theme")),
                                              hashlib.sha256((seed + ":css").encode("utf-8")).hexdigest()[:10])

    def _posts(self):
        rng = self.rng
        days = sorted(rng.sample(range(0, 700), rng.randint(4, 9)), reverse=True)
        posts = []
        for day in days:
            thing = rng.choice(self.theme["things"])
            posts.append({"date": (EPOCH + datetime.timedelta(days=day)).isoformat(),
                          "title": "%s %s" % (rng.choice(self.theme["verbs"]).capitalize(), thing),
                          "text": self._paragraph(2, 4)})
        return posts

    def _sentence(self):
        rng = self.rng
        return "%s %s %s %s" % (rng.choice(CONNECTORS), rng.choice(self.theme["verbs"]),
                                rng.choice(self.theme["things"]), rng.choice(CODAS))

    def _paragraph(self, low, high):
        return " ".join(self._sentence() for dummy in range(self.rng.randint(low, high)))

    def href(self, page):
        if page == "index":
            return "/"
        return "/%s/" % page if self.pretty_urls else "/%s.html" % page

    def path(self, page):
        if page == "index":
            return "index.html"
        return "%s/index.html" % page if self.pretty_urls else "%s.html" % page

    def css(self):
        c, rng = self.cls, self.rng
        ink, paper = _hsl_to_hex(self.hue, 30, 18), _hsl_to_hex(self.hue, 25, 97)
        accent = _hsl_to_hex((self.hue + rng.choice((0, 30, 150, 180))) % 360, 55, 38)
        width = rng.choice((38, 42, 46, 52, 60))
        rules = [
            "body{margin:0;font:%dpx/1.%d %s;color:%s;background:%s}" % (
                rng.choice((15, 16, 17, 18)), rng.choice((5, 6, 7)), self.font, ink, paper),
            "a{color:%s}" % accent,
            ".%s{max-width:%drem;margin:0 auto;padding:%drem 1rem}" % (c["wrap"], width, rng.choice((1, 2, 3))),
            ".%s{border-bottom:%dpx solid %s;padding-bottom:.5rem}" % (c["head"], rng.choice((0, 1, 2)), accent),
            ".%s a{margin-right:%.1frem;text-decoration:none}" % (c["nav"], rng.choice((0.8, 1.0, 1.2))),
            ".%s{color:%s;font-size:.85em}" % (c["meta"], _hsl_to_hex(self.hue, 10, 45)),
            ".%s{margin-top:3rem;font-size:.85em;color:%s}" % (c["foot"], _hsl_to_hex(self.hue, 10, 50)),
        ]
        if self.layout == "sidebar":
            rules.append(".%s{display:flex;gap:2rem}.%s{flex:0 0 12rem}" % (c["main"], c["side"]))
        if self.layout == "cards":
            rules.append(".%s{display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:1rem}"
                         ".%s{border:1px solid %s;padding:1rem;border-radius:%dpx}" % (
                             c["main"], c["card"], _hsl_to_hex(self.hue, 20, 85), rng.choice((0, 4, 8))))
        return "\n".join(rules) + "\n"

    def nav(self):
        names = dict((page, "Home" if page == "index" else page.capitalize()) for page in self.pages)
        return "".join('<a href="%s">%s</a>' % (self.href(page), names[page]) for page in self.pages)

    def document(self, page_title, body, lang=None):
        c = self.cls
        head = ('<!doctype html>\n<html lang="%s">\n<head>\n<meta charset="utf-8">\n'
                '<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>%s</title>\n'
                '<link rel="stylesheet" href="/%s">\n<link rel="icon" href="/favicon.ico">\n</head>\n<body>\n' % (
                    lang or "en", _escape(page_title), self.css_name))
        header = '<header class="%s"><a href="/"><strong>%s</strong></a></header>\n' % (c["head"], _escape(self.title))
        nav = '<nav class="%s">%s</nav>\n' % (c["nav"], self.nav())
        footer = '<footer class="%s">&copy; %d %s</footer>\n' % (
            c["foot"], EPOCH.year + 1 + self.rng.randrange(3), _escape(self.domain or self.title))
        if self.layout == "sidebar":
            inner = '<div class="%s"><aside class="%s">%s</aside><main>%s</main></div>\n' % (
                c["main"], c["side"], nav, body)
            return head + '<div class="%s">\n%s%s%s</div>\n</body>\n</html>\n' % (c["wrap"], header, inner, footer)
        if self.layout == "topnav":
            return head + '%s<div class="%s">\n%s<main class="%s">%s</main>\n%s</div>\n</body>\n</html>\n' % (
                nav, c["wrap"], header, c["main"], body, footer)
        return head + '<div class="%s">\n%s%s<main class="%s">%s</main>\n%s</div>\n</body>\n</html>\n' % (
            c["wrap"], header, nav, c["main"], body, footer)

    def index(self):
        c = self.cls
        lead = '<p class="%s">%s</p>' % (c["lead"], _escape(self.rng.choice(OPENERS) % " and ".join(
            self.rng.sample(list(self.theme["things"]), 2))))
        items = []
        for post in self.posts:
            if self.layout == "cards":
                items.append('<article class="%s"><h2>%s</h2><p class="%s">%s</p><p>%s</p></article>' % (
                    c["card"], _escape(post["title"]), c["meta"], post["date"], _escape(post["text"])))
            else:
                items.append('<article><h2>%s</h2><p class="%s">%s</p><p>%s</p></article>' % (
                    _escape(post["title"]), c["meta"], post["date"], _escape(post["text"])))
        return self.document(self.title, lead + "\n" + "\n".join(items))

    def page(self, name):
        body = "<h1>%s</h1>\n%s" % (_escape(name.capitalize()), "\n".join(
            "<p>%s</p>" % _escape(self._paragraph(2, 5)) for dummy in range(self.rng.randint(1, 4))))
        if name == "contact" and self.domain:
            mailbox = "%s@%s" % (self.rng.choice(("hello", "mail", "notes", "contact", "post")), self.domain)
            body += '\n<p>Write to <a href="mailto:%s">%s</a>.</p>' % (mailbox, mailbox)
        return self.document("%s - %s" % (name.capitalize(), self.title), body)

    def not_found(self):
        text = self.rng.choice(("Nothing here.", "This page does not exist.", "Page not found.",
                                "That page has moved or never was."))
        return self.document("Not found - %s" % self.title,
                             '<h1>404</h1>\n<p>%s <a href="/">Back to the start.</a></p>' % text)

    def sitemap(self):
        base = "https://%s" % self.domain
        urls = "".join("  <url><loc>%s%s</loc><lastmod>%s</lastmod></url>\n" % (
            base, self.href(page), self.posts[min(index, len(self.posts) - 1)]["date"])
            for index, page in enumerate(self.pages))
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n%s</urlset>\n' % urls)

    def robots(self):
        rules = self.rng.choice(ROBOTS).format(domain=self.domain)
        # a preview build's path, as static site generators leave them: this site's own
        preview = "Disallow: /preview/%08x/\n" % self.rng.randrange(1 << 32)
        return "%s%s\nSitemap: https://%s/sitemap.xml\n" % (rules, preview, self.domain)

    def favicon(self):
        """A 16x16 32-bit ICO: a mirrored 5x5 pattern in the site's colours on its paper colour."""
        rng = self.rng
        cells = [[rng.random() < 0.5 for dummy in range(3)] for dummy in range(5)]
        pattern = [row + row[1::-1] for row in cells]
        fg = _hsl_to_hex((self.hue + rng.choice((0, 20, 40))) % 360, 55, 42)
        bg = _hsl_to_hex(self.hue, 25, 96)

        def bgra(colour):
            return struct.pack("BBBB", int(colour[5:7], 16), int(colour[3:5], 16), int(colour[1:3], 16), 255)

        pixels = b""
        for y in range(15, -1, -1):  # BMP rows bottom-up
            for x in range(16):
                inside = 3 <= x < 13 and 3 <= y < 13
                on = inside and pattern[(y - 3) // 2][(x - 3) // 2]
                pixels += bgra(fg if on else bg)
        mask = b"\x00" * (4 * 16)
        info = struct.pack("<IiiHHIIiiII", 40, 16, 32, 1, 32, 0, len(pixels) + len(mask), 0, 0, 0, 0)
        image = info + pixels + mask
        return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(image), 22) + image

    def files(self):
        out = {"index.html": self.index(), self.css_name: self.css(), "404.html": self.not_found(),
               "robots.txt": self.robots(), "sitemap.xml": self.sitemap()}
        for page in self.pages[1:]:
            out[self.path(page)] = self.page(page)
        result = dict((path, text.encode("utf-8")) for path, text in out.items())
        result["favicon.ico"] = self.favicon()
        return result


def variant_seed(seed, variant):
    """The seed of another site of the same host (``variant``: e.g. a further domain); the seed itself without."""
    return "%s:%s" % (seed, variant) if variant else seed


def generate(seed, domain, title=None):
    """{relative path: bytes} of the host's website, deterministic in ``seed``."""
    return _Site(seed, domain, title).files()


def site_id(files):
    """A short fingerprint of a generated site (what the fleet check compares)."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode("utf-8") + b"\0" + hashlib.sha256(files[path]).digest())
    return digest.hexdigest()[:16]
