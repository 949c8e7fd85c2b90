"""The browser chat in a real headless Chromium, against a real ``bot serve``.

Needs Debian's Chromium (``apt-get install chromium chromium-driver``) and
Python Playwright (``pip install playwright``; never ``playwright install``:
the tests drive /usr/bin/chromium). Skipped with a reason when either is
missing. The README's screenshots of the chat are taken here, over the
shipped seeds alone (what a fresh clone shows): ``.github/chat.png`` (desktop)
and ``.github/chat-phone.png`` (390×844).
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import DOMBRA, FRANCE, ROOT, XSS, start_server, stop_server

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = ROOT / ".github" / "chat.png"
PHONE_SCREENSHOT = ROOT / ".github" / "chat-phone.png"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 900, "height": 1100}
ALBUM = "What is her debut album called?"

# A seed with markup in it: it must be quoted as text, never run.
HTML_SEED = (
    "Sezim's fan club newsletter is called <b>Steppe Notes</b><img src=x onerror=alert('seed')>, "
    "and it comes out every spring.\n"
)
ANSWER_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Python Playwright is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Server:
    url: str
    seeds: Path


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):
    """The URL of ``bot serve`` over the shipped seeds plus one seed full of markup."""
    base = tmp_path_factory.mktemp("browser")
    shutil.copytree(ROOT / "seeds", base / "seeds")
    (base / "seeds" / "fan-club.txt").write_text(HTML_SEED, encoding="utf-8")
    log_path = base / "serve.log"
    process, url = start_server(base, log_path)
    try:
        yield Server(url, base / "seeds")
    finally:
        stop_server(process)
        log = log_path.read_text()
        assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def shipped(browser, tmp_path_factory):
    """The URL of ``bot serve`` over a copy of the shipped seeds alone, as a fresh clone has them."""
    base = tmp_path_factory.mktemp("shipped")
    shutil.copytree(ROOT / "seeds", base / "seeds")
    log_path = base / "serve.log"
    process, url = start_server(base, log_path)
    try:
        yield url
    finally:
        stop_server(process)
        log = log_path.read_text()
        assert "Traceback" not in log, log


def shrink(png: Path) -> None:
    """Keep the README's screenshot small: 256 colours look the same for a page of text."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(png) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(png, optimize=True)


class Page:
    """A fresh page on the chat, recording dialogs, page errors and requests to other hosts."""

    def __init__(self, browser, url, viewport=DESKTOP):
        self.context = browser.new_context(viewport=viewport, device_scale_factor=1)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.elsewhere: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                     else self.elsewhere.append(r.url))
        self.page.goto(url)
        self.page.locator("#chat").wait_for()
        self.box = self.page.locator("#question textarea")

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def bot_messages(self):
        """The bot's messages, without the folded sources under answers."""
        return self.page.locator('#chat [data-testid="bot"]:not(:has(.thought-group))')

    def user_messages(self):
        return self.page.locator('#chat [data-testid="user"]')

    def ask(self, question: str) -> None:
        """Type ``question``, send it, and wait for the bot's reply to it."""
        answered = self.bot_messages().count()
        self.box.fill(question)
        self.box.press("Enter")
        self.wait_for_reply(answered)

    def wait_for_reply(self, answered_before: int) -> None:
        self.page.wait_for_function(
            """n => document.querySelectorAll('#chat [data-testid="bot"]:not(:has(.thought-group))').length > n""",
            arg=answered_before,
            timeout=ANSWER_TIMEOUT_MS,
        )

    def overlaps(self) -> list[str]:
        """Pairs of visible parts of the chat whose boxes overlap (messages as far as the chat shows them)."""
        return self.page.evaluate(OVERLAPS_JS)

    def close(self):
        self.context.close()


# The parts of the page a fan sees, by name. A part inside the chat's scrolling
# area counts only as far as that area shows it; a part inside another (an
# option button inside its message) is not said to overlap it.
OVERLAPS_JS = """() => {
  const parts = {header: '.bot-header', message: '#chat .message-row', example: '#chat button.example',
    option: '#chat button.option', clear: '#chat button[aria-label="Clear"]', box: '#question textarea',
    ask: '#question button', status: '.index-status', newchat: '#new-chat'};
  const area = document.querySelector('#chat .bubble-wrap').getBoundingClientRect();
  const seen = [];
  for (const [name, selector] of Object.entries(parts)) {
    document.querySelectorAll(selector).forEach((el, i) => {
      const r = el.getBoundingClientRect();
      if (r.width < 1 || r.height < 1 || getComputedStyle(el).visibility === 'hidden') return;
      let [left, top, right, bottom] = [r.left, r.top, r.right, r.bottom];
      if (el.closest('#chat .bubble-wrap')) {
        [left, top] = [Math.max(left, area.left), Math.max(top, area.top)];
        [right, bottom] = [Math.min(right, area.right), Math.min(bottom, area.bottom)];
        if (right - left < 1 || bottom - top < 1) return;
      }
      seen.push({name: name + '[' + i + ']', el, left, top, right, bottom});
    });
  }
  const found = [];
  for (let i = 0; i < seen.length; i++) for (let j = i + 1; j < seen.length; j++) {
    const [a, b] = [seen[i], seen[j]];
    if (a.el.contains(b.el) || b.el.contains(a.el)) continue;
    if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1)
      found.push(a.name + ' overlaps ' + b.name);
  }
  if (seen.filter(p => p.name.startsWith('header')).length !== 1) found.push('no header');
  return found;
}"""


@pytest.fixture
def chat(browser, server):
    page = Page(browser, server.url)
    yield page
    try:
        assert page.dialogs == [], "a dialog opened: something ran in the page"
        assert page.elsewhere == [], "the page loaded something from another host"
    finally:
        page.close()


def test_greeting_examples_and_status(chat):
    from playwright.sync_api import expect

    page = chat.page
    expect(page.locator(".bot-name")).to_have_text("Dombra")
    expect(page.locator(".bot-greeting")).to_contain_text("Sälem! I'm Dombra")
    expect(page.locator(".bot-tagline")).to_contain_text("Sezim Baktybekova")
    for question in (DOMBRA, "What is her debut album called?"):
        expect(page.locator("#chat button.example", has_text=question)).to_be_visible()
    expect(page.locator(".index-status")).to_contain_text("passages in 2 documents")
    assert page.title().startswith("Dombra")


def test_answer_with_collapsible_source_and_refusal(chat):
    """Click an example, see the answer and open its source; then a refusal and a suggested question."""
    from playwright.sync_api import expect

    page = chat.page
    page.locator("#chat button.example", has_text=DOMBRA).click()
    chat.wait_for_reply(0)
    expect(chat.user_messages().first).to_have_text(DOMBRA)
    answer = chat.bot_messages().first
    expect(answer).to_contain_text("grandmother taught her to play on the dombra")

    # The source is folded under the answer until the fan opens it.
    title = page.locator("#chat .thought-group .title").first
    expect(title).to_contain_text("Source: sezim-baktybekova.txt")
    highlighted = page.locator("#chat .thought-group blockquote strong", has_text="grandmother")
    expect(highlighted).to_be_hidden()
    title.click()
    expect(highlighted).to_be_visible()
    # The place a fan can find (the title names the file); character offsets would mean nothing.
    expect(page.locator("#chat .thought-group").first).not_to_contain_text("characters")

    chat.ask(FRANCE)
    refusal = chat.bot_messages().last
    expect(refusal).to_contain_text("I'd rather not guess")
    expect(refusal).to_contain_text("You could ask me about")
    # The refusal offers questions the bot can answer.
    expect(page.locator("#chat button.option", has_text="What is her debut album called?")).to_be_visible()

    # A suggested question is one click away.
    answered = chat.bot_messages().count()
    page.locator("#chat button.option", has_text="What is her debut album called?").click()
    chat.wait_for_reply(answered)
    expect(chat.bot_messages().last).to_contain_text("Steppes and Sighs")


def test_html_in_a_question_is_shown_literally(chat):
    from playwright.sync_api import expect

    page = chat.page
    probe = "<img src=x onerror=\"document.title='pwned'\"> **not bold** <script>alert(2)</script>"
    chat.ask(XSS)
    chat.ask(probe)
    expect(chat.user_messages().nth(0)).to_have_text(XSS)
    expect(chat.user_messages().nth(1)).to_have_text(probe)
    assert page.locator("#chat img").count() == 0
    assert page.locator("#chat script, #chat strong").count() == 0
    assert page.title().startswith("Dombra")
    page.wait_for_timeout(500)  # give any injected handler time to fire
    assert chat.dialogs == [] and chat.errors == []
    # Both questions were answered (from the seed that holds markup, as it happens).
    expect(chat.bot_messages()).to_have_count(2)


def test_html_in_a_seed_is_quoted_as_text(chat):
    from playwright.sync_api import expect

    page = chat.page
    chat.ask("What is the fan club newsletter called?")
    answer = chat.bot_messages().first
    expect(answer).to_contain_text("<b>Steppe Notes</b><img src=x onerror=alert('seed')>")
    page.locator("#chat .thought-group .title").first.click()
    expect(page.locator("#chat .thought-group blockquote strong").first).to_contain_text("<b>Steppe Notes</b>")
    expect(page.locator("#chat .thought-group .title").first).to_contain_text("fan-club.txt")
    assert page.locator("#chat img, #chat b, #chat script").count() == 0
    page.wait_for_timeout(500)
    assert chat.dialogs == [] and chat.errors == []


def test_too_long_question_and_new_chat(chat):
    from playwright.sync_api import expect

    page = chat.page
    chat.ask("Tell me about her. " * 80)
    expect(chat.bot_messages().last).to_contain_text("under 1000 characters")
    expect(chat.user_messages().last).to_contain_text("…")

    page.locator("#new-chat").click()
    expect(chat.bot_messages()).to_have_count(0)
    expect(page.locator("#chat button.example", has_text=DOMBRA)).to_be_visible()


def test_index_updated_indicator(chat, server):
    """A seed added while the page is open: the page says so, and the new text is answered."""
    from playwright.sync_api import expect

    page = chat.page
    status = page.locator(".index-status")
    expect(status).to_contain_text("in 2 documents")
    expect(page.locator(".index-status .status-updated")).to_have_count(0)
    (server.seeds / "pets.txt").write_text(
        "Sezim has a cat named Kumis, who sleeps on her dombra case on every tour.\n", encoding="utf-8"
    )
    expect(page.locator(".index-status .status-updated")).to_contain_text("Index updated at", timeout=30_000)
    expect(status).to_contain_text("in 3 documents")
    chat.ask("What is the name of Sezim's cat?")
    expect(chat.bot_messages().last).to_contain_text("Kumis")


# -- what a fan sees first, on a phone and on a desktop (the shipped seeds alone) -----------


def settle(page) -> None:
    """Nothing focused or hovered, the chat scrolled to its top: the page as a fan first sees it."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.mouse.move(0, 0)
    page.locator("#chat .bubble-wrap").evaluate("e => { e.scrollTop = 0; }")
    page.wait_for_timeout(300)


def save_screenshot(page, path: Path, clip: dict | None = None) -> None:
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), clip=clip)
    shrink(path)
    assert path.stat().st_size < 150_000


def looks_like_a_button(locator) -> bool:
    """A border of its own, or a background other than the chat's: not plain text on the chat."""
    border, style, background, chat = locator.evaluate(
        "e => { const s = getComputedStyle(e); return [parseFloat(s.borderTopWidth), s.borderTopStyle, "
        "s.backgroundColor, getComputedStyle(e.closest('#chat')).backgroundColor]; }"
    )
    return (border >= 1 and style != "none") or background != chat


@pytest.fixture
def fresh(browser, shipped):
    """A page opener over the shipped seeds; every page it opened is checked and closed afterwards."""
    pages = []

    def open_page(viewport=DESKTOP):
        pages.append(Page(browser, shipped, viewport))
        return pages[-1]

    yield open_page
    for page in pages:
        try:
            assert page.dialogs == [] and page.errors == [], (page.dialogs, page.errors)
            assert page.elsewhere == [], "the page loaded something from another host"
        finally:
            page.close()


def test_phone_opens_at_the_top_with_nothing_overlapping(fresh):
    """At 390×844 the bot's name shows on load, nothing overlaps, and a conversation fits. Saves chat-phone.png."""
    from playwright.sync_api import expect

    chat = fresh(PHONE)
    page = chat.page
    expect(page.locator("#chat button.example")).to_have_count(4)
    page.wait_for_timeout(500)  # time for anything that would focus the box and scroll to it
    assert page.evaluate("window.scrollY") == 0
    assert page.evaluate("document.activeElement.tagName") != "TEXTAREA"  # no keyboard popping up
    name = page.locator(".bot-name").bounding_box()
    assert name["y"] >= 0 and name["y"] + name["height"] <= PHONE["height"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    # The greeting runs under the name, across the page, not in a column beside the avatar.
    header, greeting = page.locator(".bot-header").bounding_box(), page.locator(".bot-greeting").bounding_box()
    avatar = page.locator(".bot-avatar").bounding_box()
    assert greeting["y"] >= avatar["y"] + avatar["height"] and greeting["width"] > 0.9 * header["width"]
    # The status line is one line, whole.
    status = page.locator(".index-status")
    expect(status).to_contain_text("Answering from 15 passages in 1 document")
    height, font, clipped = status.evaluate("e => [e.getBoundingClientRect().height, "
                                            "parseFloat(getComputedStyle(e).fontSize), e.scrollWidth > e.clientWidth]")
    assert height < 2 * font and not clipped
    for example in page.locator("#chat button.example").all():
        assert looks_like_a_button(example)
    assert chat.overlaps() == []

    # A blank question leaves no empty bubble.
    chat.box.fill("   ")
    chat.box.press("Enter")
    page.wait_for_timeout(1000)
    expect(chat.user_messages()).to_have_count(0)
    expect(chat.box).to_have_value("")

    page.locator("#chat button.example", has_text=DOMBRA).click()
    chat.wait_for_reply(0)
    expect(chat.bot_messages().first).to_contain_text("grandmother taught her")
    settle(page)
    assert chat.overlaps() == []
    save_screenshot(page, PHONE_SCREENSHOT)

    chat.ask(FRANCE)  # a refusal with its suggested questions, under the answer
    expect(page.locator("#chat button.option").first).to_be_visible()
    for scroll in ("e.scrollHeight", "0"):  # the newest messages, then the oldest
        page.locator("#chat .bubble-wrap").evaluate(f"e => {{ e.scrollTop = {scroll}; }}")
        page.wait_for_timeout(200)
        assert chat.overlaps() == []


def test_desktop_welcome_then_answer_and_refusal(fresh):
    """The welcome state: example questions as buttons, no empty area. Saves the README's chat.png."""
    from playwright.sync_api import expect

    chat = fresh()
    page = chat.page
    examples = page.locator("#chat button.example")
    expect(examples).to_have_count(4)
    for example in examples.all():
        assert looks_like_a_button(example)
    # The chat is as tall as the greeting line and the examples, no taller.
    area, last = page.locator("#chat").bounding_box(), examples.last.bounding_box()
    assert area["y"] + area["height"] - (last["y"] + last["height"]) < 40
    placeholder = page.locator("#chat .placeholder").bounding_box()
    assert placeholder["y"] - area["y"] < 60
    expect(page.locator(".index-status")).to_have_text("Answering from 15 passages in 1 document")
    assert page.evaluate("window.scrollY") == 0 and chat.overlaps() == []

    # For the README: an answer with its source open, then a refusal with suggestions.
    page.locator("#chat button.example", has_text=DOMBRA).click()
    chat.wait_for_reply(0)
    page.locator("#chat .thought-group .title").first.click()
    expect(page.locator("#chat .thought-group blockquote strong", has_text="grandmother")).to_be_visible()
    chat.ask(FRANCE)
    expect(page.locator("#chat button.option", has_text=ALBUM)).to_be_visible()
    settle(page)
    assert chat.overlaps() == []
    bottom = page.locator("#status-row").bounding_box()
    save_screenshot(page, SCREENSHOT, {"x": 0, "y": 0, "width": DESKTOP["width"],
                                       "height": bottom["y"] + bottom["height"] + 16})
