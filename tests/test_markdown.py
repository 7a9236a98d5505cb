"""Markdown in issue descriptions and comments: rendering, sanitizing, mentions, excerpts."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser

import pytest
from markupsafe import Markup

from app.core.markdown import extract_mentions, markdown_excerpt, render_markdown, sanitize_html

REL = 'rel="nofollow noopener noreferrer"'


def known_people(handle: str) -> str | None:
    """The mention resolver of a tenant where ada and bob.smith are members."""
    return {"ada": "/acme/people/ada", "bob.smith": "/acme/people/bob"}.get(handle)


class Elements(HTMLParser):
    """Every element, attribute, comment and declaration of an HTML fragment."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.other: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_comment(self, data):
        self.other.append(f"comment {data!r}")

    def handle_decl(self, decl):
        self.other.append(f"declaration {decl!r}")

    def handle_pi(self, data):
        self.other.append(f"processing instruction {data!r}")

    def unknown_decl(self, data):
        self.other.append(f"declaration {data!r}")


# What the page may receive from user content: an independent statement of the policy.
ALLOWED_ELEMENTS = {
    *("p", "br", "hr", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code", "pre"),
    *("blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td"),
}
FORBIDDEN_ELEMENTS = {
    *("script", "style", "iframe", "frame", "object", "embed", "form", "input", "button"),
    *("textarea", "select", "base", "meta", "link", "svg", "math", "img", "video", "audio"),
    *("source", "details", "noscript", "template"),
}
ALLOWED_ATTRIBUTES = {"href", "title", "class", "rel", "align", "start"}


def is_safe_url(url: str) -> bool:
    """http, https, mailto, a site path (not //host) or a fragment, read as a browser reads it."""
    url = re.sub(r"[\t\n\r]", "", url).strip("".join(chr(c) for c in range(33)))
    if url.startswith("#"):
        return True
    if url.startswith("/"):
        return not url.startswith("//") and "\\" not in url
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", url)
    return bool(scheme) and scheme.group(1).lower() in {"http", "https", "mailto"}


def assert_safe(html: str) -> None:
    assert "<script" not in html.lower() and "<style" not in html.lower()
    parsed = Elements(html)
    assert parsed.other == [], parsed.other
    for tag, attrs in parsed.elements:
        assert tag not in FORBIDDEN_ELEMENTS, tag
        assert tag in ALLOWED_ELEMENTS, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name != "style", tag
            assert name in ALLOWED_ATTRIBUTES, (tag, name)
            if name in ("href", "src"):
                assert is_safe_url(value or ""), (tag, name, value)
            if name == "class":
                assert value == "mention" or re.fullmatch(r"language-[\w+#.-]+", value or ""), value
        if tag == "a":
            assert attrs.get("rel") == "nofollow noopener noreferrer", attrs


# --- rendering -------------------------------------------------------------------------


def test_empty_input_renders_empty_markup():
    """None and the empty string render as empty Markup."""
    assert render_markdown(None) == Markup("")
    assert render_markdown("") == Markup("")
    assert isinstance(render_markdown(None), Markup)


def test_emphasis_strong_and_strikethrough():
    """Emphasis, strong emphasis and ~~strikethrough~~ render as their elements."""
    html = render_markdown("*soft* **loud** ~~gone~~")
    assert html == Markup("<p><em>soft</em> <strong>loud</strong> <s>gone</s></p>\n")


def test_lists_keep_their_start_number():
    """Bullet and ordered lists render, an ordered list keeps its start number."""
    html = render_markdown("- one\n- two\n\n3. three\n4. four")
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html
    assert '<ol start="3">\n<li>three</li>\n<li>four</li>\n</ol>' in html


def test_fenced_code_keeps_language_class_and_escapes_content():
    """A fenced block keeps class="language-xyz" and shows its HTML as text."""
    html = render_markdown("```python\nif a < b:\n    print('<b>')\n```")
    assert html == Markup(
        "<pre><code class=\"language-python\">if a &lt; b:\n    print('&lt;b&gt;')\n</code></pre>\n"
    )
    assert render_markdown("    indented <code>") == Markup(
        "<pre><code>indented &lt;code&gt;\n</code></pre>\n"
    )


def test_fence_language_that_is_not_a_name_is_dropped():
    """An info string with quotes or markup gives a plain code block, not a crafted class."""
    html = render_markdown('```js" onclick="alert(1)\nx\n```')
    assert html == Markup("<pre><code>x\n</code></pre>\n")


def test_tables_use_align_attributes_not_styles():
    """Tables render with borders-ready markup; column alignment is an align attribute, never style."""
    html = render_markdown("| a | b | c |\n|:--|--:|:-:|\n| 1 | 2 | 3 |")
    assert "<table>" in html and "<thead>" in html and "<tbody>" in html
    assert '<th align="left">a</th>' in html
    assert '<td align="right">2</td>' in html
    assert '<td align="center">3</td>' in html
    assert "style" not in html


def test_links_get_rel_nofollow_noopener_noreferrer():
    """Every link carries rel="nofollow noopener noreferrer" and keeps its title."""
    html = render_markdown('[docs](https://docs.example.com/a?b=1&c=2 "The docs")')
    assert html == Markup(
        f'<p><a href="https://docs.example.com/a?b=1&amp;c=2" title="The docs" {REL}>docs</a></p>\n'
    )


def test_bare_urls_and_emails_are_linked_but_not_file_names():
    """Bare http(s) and www. URLs and email addresses are linked; setup.py stays text."""
    html = render_markdown("See https://example.com/x, www.example.org and ada@example.com, not setup.py")
    assert f'<a href="https://example.com/x" {REL}>https://example.com/x</a>,' in html
    assert f'<a href="http://www.example.org" {REL}>www.example.org</a>' in html
    assert f'<a href="mailto:ada@example.com" {REL}>ada@example.com</a>' in html
    assert "not setup.py</p>" in html


def test_relative_site_paths_and_fragments_are_links():
    """Links to a path on this site and to a fragment are kept; //host and bare relative paths are not."""
    html = render_markdown("[issue](/acme/issues/12) [top](#top) [other](//evil.example) [rel](../x)")
    assert f'<a href="/acme/issues/12" {REL}>issue</a>' in html
    assert f'<a href="#top" {REL}>top</a>' in html
    assert "other rel</p>" in html


def test_disallowed_link_schemes_render_as_text():
    """A link whose scheme is not http, https or mailto is no link: its text or its source shows."""
    html = render_markdown("[a](ftp://files.example/x) <ftp://files.example/y> [b](file:///etc/passwd)")
    assert "<a" not in html
    assert html == Markup("<p>a ftp://files.example/y [b](file:///etc/passwd)</p>\n")


def test_raw_html_is_shown_as_text():
    """HTML in the source is not passed through: it appears as text."""
    html = render_markdown("<b>bold</b> and <div>block</div>")
    assert html == Markup("<p>&lt;b&gt;bold&lt;/b&gt; and &lt;div&gt;block&lt;/div&gt;</p>\n")


def test_headings_are_demoted_below_the_page_headings():
    """# renders as h3 and deeper levels clamp at h6, so content never competes with page titles."""
    html = render_markdown("# One\n\n## Two\n\n#### Four\n\n###### Six\n\nSetext\n===")
    assert "<h3>One</h3>" in html
    assert "<h4>Two</h4>" in html
    assert "<h6>Four</h6>" in html and "<h6>Six</h6>" in html
    assert "<h3>Setext</h3>" in html
    assert "<h1" not in html and "<h2" not in html


def test_images_become_links_to_the_image():
    """An image is not loaded: it becomes a link with the alt text, or just the text for a bad URL."""
    html = render_markdown(
        '![the *chart*](https://cdn.example/c.png "Q3") ![pixel](data:image/png;base64,AAAA)'
    )
    assert html == Markup(
        f'<p><a href="https://cdn.example/c.png" title="Q3" {REL}>the chart</a> pixel</p>\n'
    )


def test_single_newline_is_a_line_break():
    """A newline inside a paragraph is kept as a line break, as in a comment box."""
    assert render_markdown("first\nsecond") == Markup("<p>first<br>\nsecond</p>\n")


def test_blockquote_and_rule():
    """Blockquotes and horizontal rules render."""
    html = render_markdown("> quoted\n\n---")
    assert html == Markup("<blockquote>\n<p>quoted</p>\n</blockquote>\n<hr>\n")


def test_rendering_is_consistent_across_threads():
    """Rendering from many threads at once (as waitress does) gives the same HTML as one thread."""
    sources = [
        f"Item {i}: https://example.com/{i} www.site{i}.example and ops{i}@example.com @ada"
        for i in range(40)
    ]
    expected = [render_markdown(text, known_people) for text in sources]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(5):
            assert list(pool.map(lambda text: render_markdown(text, known_people), sources)) == expected


# --- the XSS corpus ----------------------------------------------------------------------

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=\"javascript:alert('XSS');\">",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click]( javascript:alert(1) )",
    "[click](<javascript:alert(1)>)",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click][ref]\n\n[ref]: javascript:alert(1)",
    "[ref]\n\n[ref]: data:text/html,<script>alert(1)</script>",
    "[click][ref]\n\n[ref]: vbscript:msgbox(1) 'title'",
    "<javascript:alert(1)>",
    "<JAVASCRIPT:alert(1)>",
    "<vbscript:msgbox(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    "[click](&#106;avascript:alert(1))",
    "[click](&#x6A;&#x61;&#x76;&#x61;script&#x3A;alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click](javascript&colon;alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](<java\nscript:alert(1)>)",
    "[click](java%0ascript:alert(1))",
    '<a href="java\nscript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="javascript:alert(1)">x</a>',
    '<iframe src="https://evil.example"></iframe>',
    '<object data="https://evil.example/x.swf"></object>',
    '<embed src="https://evil.example/x.swf">',
    "<style>body{display:none}</style>",
    '<p style="position:fixed;inset:0">x</p>',
    "*x*{style=color:red}",
    "<!-- <script>alert(1)</script> -->",
    "<!--><script>alert(1)</script>-->",
    "<!--[if gte IE 4]><script>alert(1)</script><![endif]-->",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<svg><p><style><img src=x onerror=alert(1)></style></p></svg>",
    '<math href="javascript:alert(1)">click</math>',
    '<strong onclick="alert(1)">x</strong>',
    '<a href="https://ok.example" onmouseover="alert(1)">x</a>',
    "<x onclick=alert(1)>text</x>",
    '<base href="https://evil.example/">',
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    '<form action="https://evil.example"><input name="password"><button>Go</button></form>',
    "<input autofocus onfocus=alert(1)>",
    '<details open ontoggle="alert(1)">',
    "<video><source onerror=alert(1)></video>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<textarea><script>alert(1)</script></textarea>",
    '[x](https://ok.example "title\\" onmouseover=\\"alert(1)")',
    "[x](https://ok.example 'a\\' onclick=alert(1) x=\\'')",
    '[x](https://ok.example (a" autofocus onfocus="alert(1)))',
    '![alt" onerror="alert(1)](https://ok.example/x.png)',
    '![x](https://ok.example/x.png "t\\" onerror=\\"alert(1)")',
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "[![x](javascript:alert(1))](javascript:alert(1))",
    "[![img](https://ok.example/i.png)](https://ok.example)",
    '<http://ok.example/" onmouseover="alert(1)>',
    "<mailto:a@b.example?body=<script>alert(1)</script>>",
    'https://ok.example/"onmouseover="alert(1)',
    "www.example.com/<script>alert(1)</script>",
    "[x](//evil.example/x)",
    "[x](/\\evil.example/x)",
    "[x](file:///etc/passwd)",
    "@ada<script>alert(1)</script>",
    '@ada"><img src=x onerror=alert(1)>',
    "<b>@ada</b><img src=x onerror=alert(1)>@bob.smith",
    "[@ada](javascript:alert(1)) @ada<svg onload=alert(1)>",
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n```",
    '```js" onclick="alert(1)\nx\n```',
    "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
    '| a |\n|:-:|\n| b |\n\n<td style="color:red">',
    "\x00<script>alert(1)</script>",
    "<<script>script>alert(1)<</script>/script>",
]


def test_xss_corpus_is_large_enough():
    """The XSS corpus holds at least 40 distinct payloads."""
    assert len(set(XSS_PAYLOADS)) == len(XSS_PAYLOADS) >= 40


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_payload_renders_safely(payload):
    """Rendered output has no dangerous element, no event handler or style, and only safe URLs."""
    assert_safe(render_markdown(payload))
    assert_safe(render_markdown(payload, known_people))
    assert_safe(render_markdown(f"> {payload}\n\n- {payload}\n\n**{payload}**", known_people))


# Raw HTML the parser never emits (it shows HTML as text), for the sanitizer on its own.
SANITIZER_PAYLOADS = [
    '<a href="//evil.example/x">x</a>',
    '<a href="/\\evil.example/x">x</a>',
    '<a href=" &#14;javascript:alert(1)">x</a>',
    '<a href="data:text/html,x">x</a>',
    '<a href="https://ok.example" target="_blank" rel="opener">x</a>',
    '<a class="mention evil" href="/p/a" onclick="alert(1)">@a</a>',
    '<code class="language-py x" style="color:red">x</code>',
    '<pre class="evil"><code class="language-a&quot;b">x</code></pre>',
    '<h1 id="top">Big</h1><h2>Also</h2>',
    '<th align="justify" style="color:red">a</th>',
    '<ol start="1; x"><li>x</li></ol>',
    '<img src="https://ok.example/x.png" alt="x">',
    '<p><img src="/local.png"></p>',
    "<div><span>text</span></div>",
    "<link rel=stylesheet href=https://evil.example/x.css>",
    "<template><script>alert(1)</script></template>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    '<a href="https://ok.example" formaction="javascript:alert(1)" srcdoc="<script>">x</a>',
]


@pytest.mark.parametrize("payload", XSS_PAYLOADS + SANITIZER_PAYLOADS)
def test_sanitizer_alone_makes_raw_html_safe(payload):
    """Even if the parser passed raw HTML through, the sanitizer would leave only the allowlist."""
    assert_safe(sanitize_html(payload))


def test_sanitizer_keeps_what_the_renderer_needs():
    """The allowlist keeps mention links, language classes, alignment and list starts."""
    html = (
        f'<p><a href="/p/a" class="mention" {REL}>@a</a></p>'
        '<pre><code class="language-c++">x</code></pre>'
        '<table><tbody><tr><td align="right">1</td></tr></tbody></table><ol start="3"><li>x</li></ol>'
    )
    assert sanitize_html(html) == html


def test_safety_checker_catches_what_it_must():
    """The test's own checker rejects each kind of unsafe output it looks for."""
    unsafe = [
        "<script>x</script>",
        '<p onclick="x">a</p>',
        '<p style="color:red">a</p>',
        '<a href="javascript:x" rel="nofollow noopener noreferrer">a</a>',
        '<a href="//evil.example" rel="nofollow noopener noreferrer">a</a>',
        '<a href="https://ok.example">no rel</a>',
        "<svg></svg>",
        "<img src=x>",
        "<!-- hidden -->",
    ]
    for html in unsafe:
        with pytest.raises(AssertionError):
            assert_safe(html)


# --- mentions ----------------------------------------------------------------------------


def test_extract_mentions_ignores_code_links_and_emails():
    """Mentions in code spans, code blocks, link text and email addresses are not mentions."""
    text = (
        "Ping @Ada and @bob.smith.\n\n"
        "`@carol` in code, ada@example.com by mail, [@dave](https://x.example) in a link,\n"
        "https://social.example/@erin in a URL and \\@frank escaped.\n\n"
        "```\n@gina\n```\n\n    @hank indented"
    )
    assert extract_mentions(text) == {"ada", "bob.smith"}


def test_extract_mentions_handles_punctuation_and_edges():
    """A trailing dot is not part of a handle; handles are lower-cased; empty input has none."""
    assert extract_mentions("(@Zed), @a_b-c. **@strong** > @quoted") == {"zed", "a_b-c", "strong", "quoted"}
    assert extract_mentions("ada@example") == set()
    assert extract_mentions("@ada@example.org") == set()
    assert extract_mentions("") == set() and extract_mentions(None) == set()


def test_known_mentions_become_links_and_unknown_stay_text():
    """A handle the resolver knows becomes a mention link; an unknown one stays plain text."""
    html = render_markdown("Thanks @Ada and @bob.smith, cc @nobody.", known_people)
    assert html == Markup(
        f'<p>Thanks <a href="/acme/people/ada" class="mention" {REL}>@Ada</a> and '
        f'<a href="/acme/people/bob" class="mention" {REL}>@bob.smith</a>, cc @nobody.</p>\n'
    )


def test_mentions_are_not_linked_without_a_resolver_or_inside_code():
    """Without a resolver mentions stay text; inside code or links they are never resolved."""
    assert render_markdown("@ada") == Markup("<p>@ada</p>\n")
    html = render_markdown("`@ada` [see @ada](https://x.example)", known_people)
    assert "mention" not in html


def test_resolver_gets_lower_cased_handles_only():
    """The resolver is asked only about lower-cased handles of the mention alphabet."""
    asked = []

    def resolver(handle):
        asked.append(handle)
        return None

    render_markdown("@Ada\"><b>x</b> @Bob.Smith<script> @c'd @e&amp;f", resolver)
    assert asked == ["ada", "bob.smith", "c", "e"]
    assert all(re.fullmatch(r"[a-z0-9._-]+", handle) for handle in asked)


def test_mention_adjacent_to_html_cannot_inject_markup():
    """A mention followed by HTML links only the handle; the HTML stays text."""
    html = render_markdown('@ada"><img src=x onerror=alert(1)>', known_people)
    assert html == Markup(
        f'<p><a href="/acme/people/ada" class="mention" {REL}>@ada</a>'
        '"&gt;&lt;img src=x onerror=alert(1)&gt;</p>\n'
    )
    assert_safe(html)


def test_resolver_urls_are_checked_and_escaped():
    """A resolver URL with a bad scheme is not linked; quotes in a good one stay inside href."""
    html = render_markdown("@ada @bob", {"ada": "javascript:alert(1)", "bob": '/p/b" onclick="x'}.get)
    assert "javascript" not in html
    assert "@ada <a" in html
    assert_safe(html)
    assert Elements(html).elements[1] == (
        "a",
        {"href": '/p/b" onclick="x', "class": "mention", "rel": "nofollow noopener noreferrer"},
    )


# --- the template filter -----------------------------------------------------------------


def test_markdown_filter_in_an_app_template(app):
    """{{ text|markdown }} renders sanitized HTML as Markup, not double-escaped."""
    with app.app_context():
        template = app.jinja_env.from_string("<div class=markdown>{{ text|markdown }}</div>|{{ text }}")
        html = template.render(text="**Hi** <b>there</b>")
        assert isinstance(app.jinja_env.filters["markdown"]("x"), Markup)
    rendered, escaped = html.split("|")
    assert rendered == "<div class=markdown><p><strong>Hi</strong> &lt;b&gt;there&lt;/b&gt;</p>\n</div>"
    assert escaped == "**Hi** &lt;b&gt;there&lt;/b&gt;"


def test_markdown_filter_handles_none_and_excerpt_filter(app):
    """The filter accepts None; |markdown_excerpt gives escaped plain text."""
    with app.app_context():
        html = app.jinja_env.from_string("[{{ none|markdown }}][{{ text|markdown_excerpt(12) }}]").render(
            none=None, text="# Heading with <tags> and more"
        )
    assert html == "[][Heading…]"


# --- excerpts ----------------------------------------------------------------------------


def test_excerpt_strips_markup_and_collapses_whitespace():
    """The excerpt is the text of the Markdown with markup gone and whitespace collapsed."""
    text = "# Title\n\n**Bold**   and [a link](https://x.example) `code`\n\n- one\n- two\n\n```\nx = 1\n```"
    assert markdown_excerpt(text) == "Title Bold and a link code one two x = 1"


def test_excerpt_is_plain_text_not_html():
    """Entities are decoded and angle brackets kept: the excerpt is text for the template to escape."""
    assert markdown_excerpt("Tom &amp; Jerry <b>x</b> @ada") == "Tom & Jerry <b>x</b> @ada"


def test_excerpt_truncates_at_a_word_with_an_ellipsis():
    """A long text is cut at a word boundary to at most `length` characters, ending in an ellipsis."""
    text = " ".join(["word"] * 100)
    excerpt = markdown_excerpt(text, length=30)
    assert excerpt == "word word word word word word…"
    assert len(excerpt) <= 30
    assert len(markdown_excerpt(text)) <= 160
    assert markdown_excerpt("x" * 50, length=10) == "x" * 9 + "…"
    assert markdown_excerpt("short", length=10) == "short"
    assert markdown_excerpt(None) == "" and markdown_excerpt("") == ""
