"""The documentation site builds strictly and reads well offline.

One ``mkdocs build --strict`` per session (module fixture) into a temporary directory, then:

* every page in the nav exists and every link resolves (the strict build);
* no page shows raw TeX: the equations are MathML written at build time
  (docs/hooks/mathml.py), the TeX surviving only in ``<annotation>``;
* the theory page holds rendered math (``<math>`` with fractions, scripts, radicals, display
  equations);
* no page loads a script, stylesheet, font or image from the network, and every local
  ``url(...)`` in the site's CSS (the fonts) is shipped;
* tables sit in the sideways-scrolling ``div.table-wrap`` that css/extra.css styles, and
  inline code does not break inside a token.

Each check is a function of the built site, so it can be run on any build; the
``test_checks_fail_*`` tests feed each one a small page with the defect it looks for.
"""
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# TeX that must not reach a reader: delimiters, and any backslash command (\frac, \sum,
# \mathbb, \le ...); a $...$ pair in running text is TeX that no extension picked up
RAW_TEX = re.compile(r"\$\$|\\[()\[\]]|\\[A-Za-z]+|\$[^$\s][^$\n]*\$")
# elements whose text is not prose: code, and the TeX kept for copying inside MathML
NOT_PROSE = {"code", "pre", "kbd", "samp", "script", "style", "textarea", "annotation"}
REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.I)       # http://, https://, //host
CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)""", re.I | re.S)
CSS_IMPORT = re.compile(r"""@import\s+(?:url\(\s*)?(['"]?)([^'")\s;]+)""", re.I)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs") / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _pages(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 10, f"only {len(pages)} pages were built"
    return pages


class _Page(HTMLParser):
    """What the checks need from one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skip = 0                 # depth inside NOT_PROSE elements
        self.text = []                # prose text
        self.loads = []               # (tag, attribute, value) of everything the page fetches
        self.css = []                 # inline <style> text and style="..." attributes
        self.in_style = False
        self.stack = []               # open elements as (tag, class)
        self.tables = []              # for each <table>: the element it sits in
        self.math = 0
        self.display_math = 0
        self.tags = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag in NOT_PROSE:
            self.skip += 1
        if tag == "style":
            self.in_style = True
        if a.get("style"):
            self.css.append(a["style"])
        if tag == "script" and a.get("src"):
            self.loads.append((tag, "src", a["src"]))
        elif tag == "link" and a.get("href"):
            rel = (a.get("rel") or "").lower()
            if rel not in {"canonical", "alternate", "next", "prev", "author", "license"}:
                self.loads.append((tag, "href", a["href"]))   # stylesheet, icon, preload...
        elif tag in ("img", "iframe", "embed", "source", "audio", "video", "track", "input"):
            for attr in ("src", "srcset", "poster"):
                if a.get(attr):
                    self.loads.append((tag, attr, a[attr]))
        elif tag == "object" and a.get("data"):
            self.loads.append((tag, "data", a["data"]))
        if tag == "math":
            self.math += 1
            self.display_math += a.get("display") == "block"
        if tag == "table":
            self.tables.append(self.stack[-1] if self.stack else (None, ""))
        if tag not in ("br", "img", "meta", "link", "input", "hr", "wbr", "source", "mspace"):
            self.stack.append((tag, a.get("class") or ""))

    def handle_endtag(self, tag):
        if tag in NOT_PROSE:
            self.skip -= 1
        if tag == "style":
            self.in_style = False
        for i in range(len(self.stack) - 1, -1, -1):      # tolerate unclosed <p>, <li>
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if self.in_style:
            self.css.append(data)
        elif self.skip == 0:
            self.text.append(data)


def _parse(path):
    page = _Page()
    page.feed(Path(path).read_text(encoding="utf-8"))
    page.close()
    return page


def _css_refs(css):
    refs = [u for _, u in CSS_URL.findall(css)] + [u for _, u in CSS_IMPORT.findall(css)]
    return [u.strip() for u in refs if u.strip()]


def raw_tex(site):
    """(page, snippet) for each piece of TeX in the prose of any page."""
    found, prose = [], 0
    for path in _pages(site):
        text = " ".join(_parse(path).text)
        prose += len(text)
        for m in RAW_TEX.finditer(text):
            found.append((str(path.relative_to(site)), text[max(0, m.start() - 30):m.end() + 30]))
    assert prose > 10_000, "the pages hold almost no prose: is the parser reading them?"
    return found


def remote_loads(site):
    """(file, what) for each script, stylesheet, font, image ... loaded from the network."""
    found, local = [], 0
    for path in _pages(site):
        page = _parse(path)
        for tag, attr, value in page.loads:
            if REMOTE.match(value) or any(REMOTE.match(v.split()[0])
                                          for v in value.split(",") if v.split()):
                found.append((str(path.relative_to(site)), f"<{tag} {attr}={value!r}>"))
            else:
                local += 1
        for ref in _css_refs(" ".join(page.css)):
            if REMOTE.match(ref):
                found.append((str(path.relative_to(site)), f"inline css {ref!r}"))
    for css in sorted(site.rglob("*.css")):
        for ref in _css_refs(css.read_text(encoding="utf-8")):
            if REMOTE.match(ref):
                found.append((str(css.relative_to(site)), f"url/@import {ref!r}"))
    assert local > 0, "no <script src> or <link href> seen at all: is the parser reading them?"
    return found


def missing_css_files(site):
    """Local url(...) targets of the site's CSS (fonts, images) that were not shipped."""
    missing, seen = [], 0
    for css in sorted(site.rglob("*.css")):
        for ref in _css_refs(css.read_text(encoding="utf-8")):
            if REMOTE.match(ref) or ref.startswith(("data:", "#")):
                continue
            seen += 1
            target = (css.parent / re.split(r"[?#]", ref)[0]).resolve()
            if not target.is_file():
                missing.append(f"{css.relative_to(site)}: {ref}")
    assert seen > 0, "the CSS references no local file at all"
    return missing


def unwrapped_tables(site):
    """(page, count) for pages with a table that is not inside div.table-wrap."""
    found, tables = [], 0
    for path in _pages(site):
        page = _parse(path)
        tables += len(page.tables)
        bad = [p for p in page.tables if not (p[0] == "div" and "table-wrap" in p[1].split())]
        if bad:
            found.append((str(path.relative_to(site)), len(bad)))
    assert tables > 0, "no table on any page"
    return found


def _css_rule(css, selector_part, declaration):
    """Whether some rule whose selector mentions selector_part sets declaration."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    prop, value = (part.strip() for part in declaration.split(":"))
    decl = re.compile(r"(?:^|;)\s*" + re.escape(prop) + r"\s*:\s*" + re.escape(value)
                      + r"\s*(?:;|$|!)")
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        if selector_part in selectors and decl.search(body.strip()):
            return True
    return False


# --- the build ----------------------------------------------------------------------------

def test_mkdocs_build_strict(site):
    assert (site / "index.html").exists()
    assert (site / "theory" / "index.html").exists()
    assert (site / "schema" / "table-1.json").exists()
    assert not (site / "hooks").exists(), "the build hooks were published as site files"


def test_shipped_schema_copy_is_current():
    assert (ROOT / "docs/schema/table-1.json").read_text() == \
        (ROOT / "lloydmax/schema/table-1.json").read_text()


# --- (a) no raw TeX -----------------------------------------------------------------------

def test_no_raw_tex_outside_code(site):
    found = raw_tex(site)
    assert not found, f"{len(found)} raw TeX fragments, e.g. {found[:5]}"


def test_no_unconverted_math_containers(site):
    for path in _pages(site):
        text = path.read_text(encoding="utf-8")
        assert 'class="arithmatex"' not in text, f"{path}: arithmatex output left unconverted"
        assert "tex-error" not in text, f"{path}: a TeX fragment failed to convert"


# --- (b) the theory page has rendered math ------------------------------------------------

def test_theory_page_has_rendered_math(site):
    page = _parse(site / "theory" / "index.html")
    assert page.math >= 150, f"only {page.math} <math> elements on the theory page"
    assert page.display_math >= 8, f"only {page.display_math} display equations"
    # real MathML layout, not TeX wrapped in <math>
    for tag in ("mfrac", "msub", "msup", "msqrt", "munderover", "mtable", "semantics"):
        assert tag in page.tags, f"no <{tag}> on the theory page"
    html = (site / "theory" / "index.html").read_text(encoding="utf-8")
    assert '<annotation encoding="application/x-tex">' in html


# --- (c) nothing from the network ---------------------------------------------------------

def test_no_page_loads_anything_from_the_network(site):
    found = remote_loads(site)
    assert not found, f"remote resources: {found[:10]}"


def test_css_urls_are_shipped(site):
    missing = missing_css_files(site)
    assert not missing, f"CSS refers to files not in the site: {missing}"
    assert (site / "assets" / "fonts" / "latinmodern-math.woff2").is_file()


# --- (d) wide tables scroll, inline code keeps its tokens whole ---------------------------

def test_tables_sit_in_the_scroll_wrapper(site):
    found = unwrapped_tables(site)
    assert not found, f"tables outside div.table-wrap: {found}"
    page = _parse(site / "table-format" / "index.html")
    assert len(page.tables) >= 2, "the table-format page lost its tables"
    assert all(p == ("div", "table-wrap") for p in page.tables)
    html = (site / "table-format" / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<link[^>]+href="[./]*css/extra\.css"', html), "extra.css not linked"


def test_extra_css_scrolls_tables_and_keeps_code_whole(site):
    css = (site / "css" / "extra.css").read_text(encoding="utf-8")
    assert _css_rule(css, ".table-wrap", "overflow-x: auto")
    assert _css_rule(css, "code", "white-space: nowrap")
    assert _css_rule(css, ".math-display", "overflow-x: auto")


def test_long_inline_code_wraps_only_between_words(site):
    html = (site / "theory" / "index.html").read_text(encoding="utf-8")
    assert '<code class="wrap"><span class="tok">' in html
    css = (site / "css" / "extra.css").read_text(encoding="utf-8")
    assert _css_rule(css, ".tok", "white-space: nowrap")


# --- the checks themselves can fail -------------------------------------------------------

BAD_PAGE = """<!doctype html><html><head>
<link rel="stylesheet" href="https://cdnjs.example/highlight.css">
<script src="//cdn.example/katex.js"></script>
<script src="../js/theme.js"></script>
<style>@import url("https://fonts.example/css?family=Lato");</style>
</head><body><div class="section">
<p>{filler}</p>
<p>$$ \\frac{{\\partial F_i}}{{\\partial t_{{i+1}}}} $$ and $x \\le 1$ and \\(a\\)</p>
<table><tr><td>--half-wave</td></tr></table>
<p><code>\\frac{{not}} prose</code></p>
<math><semantics><mi>x</mi>
<annotation encoding="application/x-tex">\\sum x</annotation></semantics></math>
</div></body></html>"""


@pytest.fixture
def bad_site(tmp_path):
    for i in range(10):
        (tmp_path / f"p{i}.html").write_text(BAD_PAGE.format(filler="prose " * 400))
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "x.css").write_text(
        '@import "https://fonts.example/lato.css";\n'
        '@font-face { src: url(https://cdn.example/f.woff2), url("../fonts/gone.woff2"); }\n')
    return tmp_path


def test_checks_fail_on_raw_tex(bad_site):
    found = raw_tex(bad_site)
    snippets = " ".join(s for _, s in found)
    assert len(found) >= 10 * 4
    assert "not" not in snippets and "sum" not in snippets      # code and annotation exempt


def test_checks_fail_on_remote_loads(bad_site):
    what = " ".join(w for _, w in remote_loads(bad_site))
    for needle in ("<link href='https://cdnjs.example", "<script src='//cdn.example",
                   "https://fonts.example/css", "https://fonts.example/lato.css",
                   "https://cdn.example/f.woff2"):
        assert needle in what, needle


def test_checks_fail_on_missing_css_file(bad_site):
    assert missing_css_files(bad_site) == ["css/x.css: ../fonts/gone.woff2"]


def test_checks_fail_on_unwrapped_table(bad_site):
    assert len(unwrapped_tables(bad_site)) == 10
    assert not _css_rule("code { white-space: normal }", "code", "white-space: nowrap")
    assert _css_rule("p, code.x { color: red; white-space : nowrap }", "code",
                     "white-space: nowrap")
