"""MkDocs hook: render the pages' TeX to MathML at build time.

``pymdownx.arithmatex`` (``generic: true``) finds ``$...$`` / ``$$...$$`` in the Markdown and
leaves each fragment as ``<span class="arithmatex">\\(...\\)</span>`` or
``<div class="arithmatex">\\[...\\]</div>``.  This hook converts every such fragment with
``latex2mathml`` into a ``<math>`` element, so the built HTML holds no TeX outside code
(the source survives only as ``<annotation encoding="application/x-tex">``, for copying)
and the equations need no script, no CDN and no network: browsers render MathML Core
natively.

latex2mathml writes a few things MathML Core does not render (``mathvariant`` other than
``normal``, operator names as ``<mo>``, accents without ``accent="true"``); they are rewritten
below.  A fragment that fails to convert, or whose output still holds a backslash (an
unknown command comes back as ``<mi>\\foo</mi>``), is logged as a warning, so
``mkdocs build --strict`` fails on it.
"""
from __future__ import annotations

import html
import logging
import re
import unicodedata
import xml.etree.ElementTree as ET

from latex2mathml.converter import convert

log = logging.getLogger("mkdocs.hooks.mathml")

_INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.S)

# mathvariant values that MathML Core ignores, as Unicode "MATHEMATICAL ..." name parts
_VARIANTS = {
    "bold": "BOLD", "italic": "ITALIC", "bold-italic": "BOLD ITALIC",
    "double-struck": "DOUBLE-STRUCK", "script": "SCRIPT", "bold-script": "BOLD SCRIPT",
    "fraktur": "FRAKTUR", "bold-fraktur": "BOLD FRAKTUR", "sans-serif": "SANS-SERIF",
    "bold-sans-serif": "SANS-SERIF BOLD", "sans-serif-italic": "SANS-SERIF ITALIC",
    "monospace": "MONOSPACE",
}
# letters that live in the Letterlike Symbols block instead (e.g. DOUBLE-STRUCK CAPITAL R)
_LETTERLIKE = {"SCRIPT": "SCRIPT", "FRAKTUR": "BLACK-LETTER", "DOUBLE-STRUCK": "DOUBLE-STRUCK",
               "ITALIC": "ITALIC"}
_DIGITS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
# upright function names latex2mathml writes as <mi> (\max, \operatorname{..} come as <mo>)
_FUNCTIONS = {"log", "ln", "lg", "exp", "sin", "cos", "tan", "sinh", "cosh", "tanh", "arg",
              "det", "dim", "gcd", "deg", "ker", "lim", "sup", "inf", "max", "min", "Pr"}
# accents (as latex2mathml writes them) -> the character that sits well over a letter;
# U+2015 is the one Latin Modern Math stretches over a wide base (\overline)
_ACCENTS = {"~": "\u02dc", "\u02dc": "\u02dc", "^": "\u02c6", "\u02c6": "\u02c6",
            "\u00af": "\u2015", "\u203e": "\u2015", "\u2015": "\u2015", "\u2192": "\u2192",
            "\u02d9": "\u02d9", "\u00a8": "\u00a8", "\u02c7": "\u02c7", "\u00b4": "\u00b4",
            "`": "`"}
# operators that latex2mathml writes as identifiers (\pm, \sim, \iff, \lceil ...)
_MI_OPERATORS = {"\u00b1": "\u00b1", "\u2213": "\u2213", "~": "\u223c", "\u27fa": "\u27fa",
                 "\u27f9": "\u27f9", "\u27f8": "\u27f8", "\u21d4": "\u21d4", "\u21d2": "\u21d2",
                 "\u2308": "\u2308", "\u2309": "\u2309", "\u230a": "\u230a", "\u230b": "\u230b"}
# and symbols it writes as operators (\infty, \partial, \emptyset, \dots, \cdots)
_MO_SYMBOLS = {"\u221e", "\u2202", "\u2205", "\u2026", "\u22ef"}
_SIGNS = {"\u2212", "+", "\u00b1", "\u2213"}
# after these a sign is binary (a - b, (a) - b, |a| - b); after any other operator, unary
_CLOSERS = {")", "]", "}", "|", "\u2016", "\u2309", "\u230b", "\u27e9", "!", "'", "\u2032"}
# TeX puts no space between an operator name and these (\max(x, 0), \sign(w),)
_TIGHT_AFTER_OPNAME = {"(", "[", "{", "\u2308", "\u230a", "\u27e8", ")", "]", "}", ",", ";",
                       ".", "!"}
_BARS = {"|", "\u2016"}                          # |, \lvert, \rvert, \|, \lVert, \rVert
_SCRIPTED = {"msub", "msup", "msubsup", "munder", "mover", "munderover"}
_ROWS = {"mrow", "mtd", "msqrt", "mstyle", "mpadded", "mphantom", "menclose"}
_THIN = "0.1667em"


def _styled(ch: str, style: str) -> str | None:
    """The Unicode mathematical-alphanumeric form of one character, or None."""
    if "A" <= ch <= "Z" or "a" <= ch <= "z":
        case = "CAPITAL" if ch.isupper() else "SMALL"
        names = [f"MATHEMATICAL {style} {case} {ch.upper()}"]
        if style in _LETTERLIKE:
            names.append(f"{_LETTERLIKE[style]} {case} {ch.upper()}")
        if style == "ITALIC" and ch == "h":
            names.append("PLANCK CONSTANT")
    elif "0" <= ch <= "9":
        names = [f"MATHEMATICAL {style} DIGIT {_DIGITS[int(ch)]}"]
    else:
        return None
    for name in names:
        try:
            return unicodedata.lookup(name)
        except KeyError:
            continue
    return None


def _fix_variant(el: ET.Element) -> None:
    variant = el.attrib.get("mathvariant")
    if variant is None or variant == "normal":
        return
    del el.attrib["mathvariant"]
    style = _VARIANTS.get(variant)
    text = el.text or ""
    mapped = [_styled(c, style) for c in text] if style and el.tag != "mtext" else [None]
    if all(mapped):
        el.text = "".join(mapped)
        if el.tag == "mi":
            el.set("mathvariant", "normal")      # already styled: no automatic italic
    else:                                        # mtext (\texttt{...}) and the rest: CSS
        el.set("class", f"tex-{variant}")
        if el.tag == "mi":
            el.set("mathvariant", "normal")




def _is_opname(text: str | None) -> bool:
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9]+", text or ""))


def _em(value: str) -> float | None:
    m = re.fullmatch(r"\s*([0-9.]+)\s*(em|pt|ex)?\s*", value)
    if not m:
        return None
    return float(m.group(1)) * {"em": 1.0, "pt": 0.1, "ex": 0.45, None: 1.0}[m.group(2)]


def _fix_row(el: ET.Element) -> None:
    """Spacing TeX gives and MathML Core does not, for the children of one row."""
    prev = None
    children = list(el)
    for i, child in enumerate(children):
        core = child[0] if child.tag in _SCRIPTED and len(child) else child
        if core.tag == "mo" and _is_opname(core.text) and i + 1 < len(children):
            nxt = children[i + 1]
            if nxt.tag == "mo" and (nxt.text or "") in _TIGHT_AFTER_OPNAME:
                core.set("rspace", "0")          # \max(x, 0), \operatorname{sign}(w)
        text = child.text or ""
        if child.tag == "mo" and text in _SIGNS and "form" not in child.attrib and (
                prev is None or (prev.tag == "mo" and (prev.text or "") not in _CLOSERS)):
            # unary sign (after a relation, an opening bracket, a comma, or first): no space
            child.set("form", "prefix")
            child.set("lspace", "0")
            child.set("rspace", "0")
        elif child.tag == "mo" and text == "/":
            child.set("lspace", "0")             # TeX's a/b: an ordinary symbol, no space
            child.set("rspace", "0")
        if child.tag != "mspace":
            prev = child
    # TeX spaces atoms of one list only: nothing before the first, nothing after the last
    if children:
        first, last = (c[0] if c.tag in _SCRIPTED and len(c) else c
                       for c in (children[0], children[-1]))
        if first.tag == "mo":
            first.set("lspace", "0")
        if last.tag == "mo":
            last.set("rspace", "0")


def _fix_table(el: ET.Element) -> None:
    """mtable's columnalign / columnspacing / rowspacing are not in MathML Core: use CSS."""
    colspacing = [(_em(v) or 0.0) for v in el.attrib.pop("columnspacing", "0.8em").split()]
    rowspacing = _em(el.attrib.pop("rowspacing", "0")) or 0.0
    table_align = el.attrib.pop("columnalign", "").split()
    for tr in el:
        for j, td in enumerate(tr):
            left = colspacing[min(j - 1, len(colspacing) - 1)] / 2 if j else 0.0
            right = colspacing[min(j, len(colspacing) - 1)] / 2 if j < len(tr) - 1 else 0.0
            align = td.attrib.pop("columnalign", None) or \
                (table_align[min(j, len(table_align) - 1)] if table_align else "center")
            td.set("style", f"text-align: {align}; padding: {rowspacing / 2:g}em "
                            f"{right:g}em {rowspacing / 2:g}em {left:g}em")




def _sized_fence(mo: ET.Element) -> ET.Element:
    """\\big( \\Big| ...: a stretchy operator inside a row with an invisible strut of the size.

    MathML Core applies minsize only to an operator that stretches, and Chromium does not
    stretch one that is the base of a script (\\Big|_{t}), so the size is given by a strut.
    """
    size = _em(mo.attrib.pop("minsize", "")) or 1.2
    mo.attrib.pop("maxsize", None)
    mo.set("stretchy", "true")
    mo.set("symmetric", "true")
    mo.set("lspace", "0")
    mo.set("rspace", "0")
    row = ET.Element("mrow")
    row.append(mo)
    # the strut: centred on the math axis (about 0.25em above the baseline), and not
    # "space-like" (an mspace would be), or the row would count as an embellished operator
    # and stretch to its neighbours after all
    strut = ET.SubElement(row, "mpadded", {"height": f"{size / 2 + 0.25:.3f}em",
                                           "depth": f"{size / 2 - 0.25:.3f}em", "width": "0"})
    ET.SubElement(strut, "mi")
    return row


def _fix(el: ET.Element, script: bool = False) -> None:
    """Rewrite latex2mathml's output, in place, into what MathML Core renders as TeX would."""
    for i, child in enumerate(list(el)):
        _fix(child, script or (el.tag in _SCRIPTED and i > 0))
        if child.tag == "mo" and "minsize" in child.attrib:
            el.remove(child)
            el.insert(i, _sized_fence(child))
    _fix_variant(el)
    text = el.text or ""
    if el.tag == "mtext" and "\\" in text:
        # \texttt{n\_levels}: latex2mathml keeps the escapes inside text
        el.text = re.sub(r"\\([_{}&%#$ ])", r"\1", text)
    if (el.tag == "mo" and _is_opname(text)) or \
            (el.tag == "mi" and text in _FUNCTIONS and "mathvariant" not in el.attrib):
        # an operator name (\max, \log, \operatorname{sign}): upright, with TeX's thin spaces
        # around it (none before an opening bracket: see _fix_row)
        el.tag = "mo"
        el.attrib.clear()
        el.set("lspace", _THIN)
        el.set("rspace", _THIN)
    if el.tag == "mi" and text in _MI_OPERATORS and "mathvariant" not in el.attrib:
        el.tag = "mo"
        el.text = _MI_OPERATORS[text]
        if el.text in "\u2308\u2309\u230a\u230b":
            el.set("stretchy", "false")
    if el.tag == "mo" and text in _MO_SYMBOLS:
        el.tag = "mi"                            # \infty, \partial, \dots: ordinary symbols
        el.attrib.clear()
    if el.tag == "mo" and text in _BARS and "lspace" not in el.attrib:
        el.set("lspace", "0")                    # TeX's | is ordinary: no space either side
        el.set("rspace", "0")
    if el.tag == "mi" and len(text) == 1 and "\u0391" <= text <= "\u03a9" \
            and "mathvariant" not in el.attrib:
        el.set("mathvariant", "normal")          # capital Greek is upright in TeX
    if el.tag in ("mover", "munder") and len(el) == 2 and el[1].tag == "mo" \
            and (el[1].text or "") in _ACCENTS:
        el[1].text = _ACCENTS[el[1].text]
        el[1].attrib.pop("stretchy", None)
        if el[1].text == "\u2015":
            el[1].set("stretchy", "true")        # \overline spans its base (U+2015 stretches)
        el.set("accent" if el.tag == "mover" else "accentunder", "true")
    if el.tag == "mtable":
        _fix_table(el)
    if el.tag in _ROWS:
        _fix_row(el)
    if script and el.tag == "mo" and "lspace" not in el.attrib:
        # TeX drops the spaces around binary operators and relations in sub/superscripts
        el.set("lspace", "0")
        el.set("rspace", "0")


def _placeholder(i: int) -> str:
    return "zqopname" + "".join(chr(97 + int(d)) for d in str(i))


def tex_to_mathml(tex: str, display: bool = False) -> str:
    """One TeX fragment as a ``<math>`` element (a string), for MathML Core browsers."""
    # latex2mathml knows align*, not amsmath's aligned (the form that is valid inside $$)
    source = re.sub(r"\\(begin|end)\{aligned\}", r"\\\1{align*}", tex)
    # and it splits \operatorname{expm1} into letters and a digit: name it by letters only
    names: list[str] = []

    def _opname(m: re.Match) -> str:
        names.append(m.group(1).strip())
        return r"\operatorname{" + _placeholder(len(names) - 1) + "}"
    source = re.sub(r"\\operatorname\s*\{([^{}]*)\}", _opname, source)
    out = convert(source, display="block" if display else "inline")
    try:
        root = ET.fromstring(out.replace(' xmlns="http://www.w3.org/1998/Math/MathML"', "", 1))
    except ET.ParseError as exc:                 # e.g. a bare & from an unknown environment
        raise ValueError(f"latex2mathml wrote malformed MathML ({exc})") from None
    for el in root.iter("mo"):
        m = re.fullmatch(r"zqopname([a-j]+)", el.text or "")
        if m:
            el.text = names[int("".join(str(ord(c) - 97) for c in m.group(1)))]
    _fix(root)
    for k in list(root.attrib):
        del root.attrib[k]
    if display:
        root.set("display", "block")
    body = list(root)
    for child in body:
        root.remove(child)
    semantics = ET.SubElement(root, "semantics")
    if len(body) == 1:
        semantics.append(body[0])
    else:
        row = ET.SubElement(semantics, "mrow")
        row.extend(body)
    annotation = ET.SubElement(semantics, "annotation", {"encoding": "application/x-tex"})
    annotation.text = tex
    for el in root.iter():
        if el.tag != "annotation" and "\\" in (el.text or ""):
            raise ValueError(f"unsupported TeX command {el.text!r}")
    return ET.tostring(root, encoding="unicode")


def _render(match: re.Match, page, display: bool) -> str:
    tex = html.unescape(match.group(1)).strip()
    try:
        mathml = tex_to_mathml(tex, display)
    except Exception as exc:  # any failure is reported the same way
        log.warning("%s: cannot render TeX %r as MathML: %s", page.file.src_uri, tex, exc)
        return f'<code class="tex-error">{html.escape(tex)}</code>'
    if display:
        return f'<div class="math-display">{mathml}</div>'
    return mathml


# An inline <math> is an atomic box, and browsers may break a line on either side of it, so
# "$t_1 = q_1/2$, a" could put the comma at the start of the next line.  Punctuation that
# touches an inline equation is kept on its line.
_GLUE = re.compile(r"([(\[{]+)?(<math>.*?</math>)([.,;:!?)\]}%\u2019-]+)?", re.S)


def _glue(m: re.Match) -> str:
    if not (m.group(1) or m.group(3)):
        return m.group(0)
    return f'<span class="math-glue">{m.group(1) or ""}{m.group(2)}{m.group(3) or ""}</span>'


def on_page_content(html_text, page, config, files):
    html_text = _BLOCK.sub(lambda m: _render(m, page, True), html_text)
    html_text = _INLINE.sub(lambda m: _render(m, page, False), html_text)
    return _GLUE.sub(_glue, html_text)
