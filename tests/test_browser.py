"""The browser chat in a real headless Chromium, against a real ``bot serve``.

Needs Debian's Chromium (``apt-get install chromium chromium-driver``) and
Python Playwright (``pip install playwright``; never ``playwright install``:
the tests drive /usr/bin/chromium). Skipped with a reason when either is
missing. The screenshot of the chat in the README is taken here and saved to
``.github/chat.png``.
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

    def __init__(self, browser, url):
        self.context = browser.new_context(viewport={"width": 900, "height": 1100}, device_scale_factor=1)
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

    def close(self):
        self.context.close()


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
    """Click an example, see the answer and open its source; then a refusal. Saves the README screenshot."""
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
    expect(page.locator("#chat .thought-group").first).to_contain_text("characters 69–253")

    chat.ask(FRANCE)
    refusal = chat.bot_messages().last
    expect(refusal).to_contain_text("I'd rather not guess")
    expect(refusal).to_contain_text("You could ask me about")
    # The refusal offers questions the bot can answer.
    expect(page.locator("#chat button.option", has_text="What is her debut album called?")).to_be_visible()

    # For the README: the answer with its source open, then the refusal.
    if not highlighted.is_visible():
        title.click()
    expect(highlighted).to_be_visible()
    page.locator("#question textarea").blur()
    page.mouse.move(0, 0)
    page.locator("#chat .bubble-wrap").evaluate("e => { e.scrollTop = 0; }")
    page.wait_for_timeout(300)
    bottom = page.locator("#status-row").bounding_box()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    height = bottom["y"] + bottom["height"] + 16
    page.screenshot(path=str(SCREENSHOT), clip={"x": 0, "y": 0, "width": 900, "height": height})
    shrink(SCREENSHOT)
    assert SCREENSHOT.stat().st_size < 150_000

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
