"""The account holders' web pages, in a real headless Chromium, against the `local` server.

Started by scripts/browser-tests.sh, which installs what is missing and passes:
  LOCAL_BIN        the `local` binary to run
  SCREENSHOTS_DIR  where each page's screenshot is saved (docs/screenshots to refresh
                   the README's pictures)

The server gets its own temporary data directory and a free port on 127.0.0.1, emails go
to its outbox, and its reset link points at its own /reset-password page.
"""

import ctypes
import email
import email.policy
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

PASSWORD = "Dragon-Hoard-2026"
CHANGED = "Tavern-Brawl-2027"
RESET = "Fresh-Start-2028"
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR", ".tools/screenshots"))
PAGES = ["/", "/signup", "/forgot-password", "/reset-password", "/verify-email", "/account"]
ASSETS = [
    "/assets/app.css",
    "/assets/favicon.svg",
    "/assets/api.js",
    "/assets/ui.js",
    "/assets/signin.js",
    "/assets/signup.js",
    "/assets/forgot-password.js",
    "/assets/reset-password.js",
    "/assets/verify-email.js",
    "/assets/account.js",
    "/assets/scopes.js",
    "/assets/scope-picker.js",
]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def die_with_parent():
    """In the server's process: receive SIGTERM when the tests' process dies, however it
    dies, so that no server outlives the tests."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Server:
    """A running `local` server over a temporary data directory."""

    def __init__(self, data: Path, **settings: str):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.outbox = data / "outbox"
        env = dict(os.environ, RUST_LOG="warn", THROTTLE_ACCOUNT_FAILURES="3/900", **settings)
        env.pop("THROTTLING", None)
        self.process = subprocess.Popen(
            [
                os.environ["LOCAL_BIN"],
                "--listen", f"127.0.0.1:{port}",
                "--data", str(data),
                "--reset-url", f"{self.base}/reset-password",
                "--verify-email-url", f"{self.base}/verify-email",
            ],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,
        )
        first = self.process.stdout.readline()
        assert first.strip() == f"foundry-auth listening on {self.base}", first
        # Keep reading what it prints (its log lines), so that a full pipe never blocks it.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def get(self, path: str, key: str | None = None):
        """(status, headers, body) of a GET, without the browser."""
        request = urllib.request.Request(self.base + path)
        if key:
            request.add_header("x-api-key", key)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def send(self, method: str, path: str, key: str, body: dict):
        """(status, body) of a JSON request, without the browser."""
        request = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method=method)
        request.add_header("x-api-key", key)
        request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def reset_link(self, to: str) -> str:
        """The reset link in the newest email of the outbox addressed to `to`."""
        return self.link(to, "/reset-password", "reset-token")

    def verify_link(self, to: str) -> str:
        """The verification link in the newest email of the outbox addressed to `to`."""
        return self.link(to, "/verify-email", "verify-token")

    def link(self, to: str, page: str, parameter: str) -> str:
        """The link to `page` with a token in the newest such email addressed to `to`."""
        mails = sorted(self.outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
        for path in reversed(mails):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] != to:
                continue
            text = message.get_body(preferencelist=("plain",)).get_content()
            found = re.search(
                re.escape(self.base + page + "?" + parameter + "=") + r"[0-9A-Za-z_-]+(&revoke-keys=1)?", text
            )
            if found:
                return found.group(0)
        raise AssertionError(f"no email with a {page} link to {to} in {self.outbox}")


@pytest.fixture(scope="session")
def server():
    with tempfile.TemporaryDirectory(prefix="foundry-auth-pages-") as data:
        running = Server(Path(data))
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="session")
def verifying_server():
    """A server that requires verified emails."""
    with tempfile.TemporaryDirectory(prefix="foundry-auth-pages-") as data:
        running = Server(Path(data), REQUIRE_EMAIL_VERIFICATION="true")
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser tab (its own storage) that fails the test on any console error, such
    as a Content-Security-Policy violation or a script error. (The browser also logs every
    answer with an error status as "Failed to load resource"; those are the API's expected
    refusals, which the tests look for on the page instead.)"""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    tab = context.new_page()
    problems = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(str(e)))
    tab.set_default_timeout(15_000)
    yield tab
    context.close()
    unexpected = [p for p in problems if not p.startswith("Failed to load resource")]
    assert unexpected == []


def shot(page: Page, name: str, full_page=True):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def new_email() -> str:
    return f"game-master-{secrets.token_hex(3)}@example.com"


def sign_in(page: Page, base: str, address: str, password: str):
    page.goto(base + "/")
    page.get_by_label("Email", exact=True).fill(address)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(base + "/account")
    expect(page.get_by_text(f"Signed in as {address}.")).to_be_visible()


def sign_out(page: Page, base: str):
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(base + "/")
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    assert page.evaluate("() => sessionStorage.length") == 0, "the master key is gone"


def test_every_page_and_asset_carries_the_security_headers(server):
    for path in PAGES + ASSETS + ["/assets/missing.js"]:
        status, headers, _ = server.get(path)
        assert status == (404 if "missing" in path else 200), path
        csp = headers["content-security-policy"]
        for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]:
            assert directive in csp, (path, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["referrer-policy"] == "no-referrer", path
        assert headers["x-content-type-options"] == "nosniff", path
    # The API beside the pages is untouched: JSON, as before.
    status, headers, body = server.get("/auth/nowhere")
    assert (status, json.loads(body)["code"]) == (404, "not_found")


def test_journey_of_an_account_holder(server, page: Page, tmp_path):
    base = server.base
    address = new_email()

    # Create an account, starting from the sign-in page.
    page.goto(base + "/")
    shot(page, "sign-in")
    page.get_by_role("link", name="Create an account").click()
    expect(page).to_have_url(base + "/signup")
    page.get_by_label("Email", exact=True).fill(address)
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_have_text("Password must be at least 8 characters long.")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    shot(page, "sign-up")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(base + "/account")

    # The master key, read from the page, works on the API.
    api_key = page.get_by_role("region", name="API key")
    master = api_key.get_by_label("Master API key")
    expect(master).to_have_value(re.compile(r"^frm_\w+$"))
    expect(master).to_have_attribute("type", "password")
    key = master.input_value()
    status, _, body = server.get("/auth/user-data", key=key)
    assert status == 200 and json.loads(body)["email"] == address
    api_key.get_by_role("button", name="Show").click()
    expect(master).to_have_attribute("type", "text")
    api_key.get_by_role("button", name="Show").click()
    expect(master).to_have_attribute("type", "password")
    # Kept in sessionStorage only: no cookie, nothing in localStorage.
    assert page.evaluate("() => Object.values(sessionStorage)") == [key]
    assert page.evaluate("() => localStorage.length") == 0
    assert page.context.cookies() == []
    usage = page.get_by_role("region", name="Usage")
    expect(usage).to_contain_text("of 1,000 requests")
    expect(usage).to_contain_text("Free plan")
    expect(page.get_by_role("status").first).to_contain_text("Your account is ready")

    # Sign out, and the account page sends a signed-out visitor back to sign in.
    sign_out(page, base)
    page.goto(base + "/account")
    expect(page).to_have_url(base + "/")
    page.wait_for_load_state()

    # Sign in with the keyboard alone: skip link, fields in order, Enter sends.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Email", exact=True)).to_be_focused()
    page.keyboard.type(address)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password", exact=True)).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(base + "/account")
    expect(page.get_by_text(f"Signed in as {address}.")).to_be_visible()

    # Copy puts the master key on the clipboard.
    api_key.get_by_role("button", name="Copy").click()
    expect(api_key.get_by_role("status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("() => navigator.clipboard.readText()") == key

    # Regenerate the master key: the old one stops working.
    page.get_by_role("button", name="Regenerate key").click()
    api_key.get_by_label("Password", exact=True).fill("Not-My-Password-1")
    api_key.get_by_role("button", name="Confirm").click()
    expect(api_key.get_by_role("alert")).to_have_text("Invalid credentials.")
    api_key.get_by_label("Password", exact=True).fill(PASSWORD)
    api_key.get_by_role("button", name="Confirm").click()
    expect(api_key.get_by_role("status")).to_contain_text("Your new key is active")
    new_key = master.input_value()
    assert new_key != key and new_key.startswith("frm_")
    assert server.get("/auth/user-data", key=key)[0] == 401
    assert server.get("/auth/user-data", key=new_key)[0] == 200
    key = new_key

    # A scoped key: created, shown once, listed, deleted.
    scoped = page.get_by_role("region", name="Scoped keys")
    scoped.get_by_label("Name", exact=True).fill("Discord bot")
    scoped.get_by_label("Expires at").fill("2020-01-01T10:00")
    scoped.get_by_role("button", name="Create key").click()
    expect(scoped.get_by_role("alert")).to_have_text(
        "expiresAt must be an RFC 3339 timestamp in the future. "
        "Choose an expiry date and time in the future, or leave it empty."
    )
    scoped.get_by_label("Monthly limit").fill("500")
    scoped.get_by_label("Expires at").fill("2031-06-30T18:00")
    scoped.get_by_label("Scoped client ID").fill("world-of-greyhawk")
    scoped.get_by_label("Scoped user ID").fill("gm-1")
    scoped.get_by_label("Foundry URL").fill("https://foundry.example.com")
    scoped.get_by_label("Foundry username").fill("Gamemaster")
    scoped.get_by_label("Foundry password").fill("table-top-secret")
    scoped.get_by_role("button", name="Create key").click()
    fresh = scoped.get_by_label("New scoped key")
    expect(fresh).to_have_value(re.compile(r"^frs_\w+$"))
    scoped_key = fresh.input_value()
    row = scoped.get_by_role("row").filter(has_text="Discord bot")
    expect(row).to_contain_text(scoped_key[:8])
    expect(row).to_contain_text("500 / month")
    expect(row).to_contain_text("client world-of-greyhawk, user gm-1")
    expect(row).to_contain_text("2031")
    expect(row).to_contain_text("Active")
    listed = json.loads(server.get("/auth/api-keys", key=key)[2])["keys"]
    assert [k["name"] for k in listed] == ["Discord bot"] and listed[0]["hasFoundryCredentials"] is True
    shot(page, "account")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "account-phone", full_page=False)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(scoped.get_by_role("status").last).to_have_text("API key deleted: “Discord bot”.")
    expect(scoped.get_by_role("row").filter(has_text="Discord bot")).to_have_count(0)
    expect(scoped).to_contain_text("No scoped keys yet")
    assert json.loads(server.get("/auth/api-keys", key=key)[2])["keys"] == []

    # Change the password: a wrong current password is said in words, then it works.
    change = page.get_by_role("region", name="Change password")
    change.get_by_label("Current password").fill("Wrong-Guess-99")
    change.get_by_label("New password").fill(CHANGED)
    change.get_by_role("button", name="Change password").click()
    expect(change.get_by_role("alert")).to_have_text("Current password is incorrect.")
    change.get_by_label("Current password").fill(PASSWORD)
    change.get_by_label("New password").fill(CHANGED)
    change.get_by_role("button", name="Change password").click()
    expect(change.get_by_role("alert")).to_have_text("Password changed successfully.")
    sign_out(page, base)

    # Forgot it anyway: request a reset; the button is disabled while the request is out.
    page.get_by_role("link", name="Forgot password?").click()
    expect(page).to_have_url(base + "/forgot-password")
    page.get_by_label("Email", exact=True).fill(address)
    send = page.get_by_role("button", name="Send reset link")
    send.click()
    expect(send).to_be_disabled()
    expect(page.get_by_role("alert")).to_contain_text(
        "If an account with that email exists, a password reset link has been sent."
    )
    expect(send).to_be_enabled()
    shot(page, "forgot-password")

    # Open the emailed link; the page checks the token and then drops it from the address bar.
    link = server.reset_link(address)
    page.goto(link)
    new_password = page.get_by_label("New password")
    expect(new_password).to_be_visible()
    expect(page).to_have_url(base + "/reset-password")
    new_password.fill(RESET)
    shot(page, "reset-password")
    page.get_by_role("button", name="Reset password").click()
    expect(page.get_by_text("Password has been reset successfully")).to_be_visible()
    page.get_by_role("link", name="Sign in").click()
    expect(page).to_have_url(base + "/")
    sign_in(page, base, address, RESET)

    # Download the data: a JSON file of the account, with no secret in it.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download my data").click()
    saved = tmp_path / "export.json"
    download.value.save_as(saved)
    text = saved.read_text()
    exported = json.loads(text)
    assert exported["user"]["email"] == address
    assert key not in text and scoped_key not in text and "table-top-secret" not in text
    expect(page.get_by_role("region", name="Your data").get_by_role("alert")).to_have_text(
        "Your data was downloaded as a JSON file."
    )

    # Delete the account: back to the sign-in page, and the key is dead.
    delete = page.get_by_role("region", name="Delete account")
    delete.get_by_label("Confirm email").fill(address)
    delete.get_by_label("Password", exact=True).fill(RESET)
    delete.get_by_role("button", name="Delete account").click()
    expect(page).to_have_url(base + "/")
    expect(page.get_by_role("status")).to_contain_text("Account successfully deleted")
    assert page.evaluate("() => sessionStorage.length") == 0
    assert server.get("/auth/user-data", key=key)[0] == 401


def test_an_invalid_reset_link_is_said_plainly(server, page: Page):
    page.goto(server.base + "/reset-password?reset-token=" + "0" * 64)
    expect(page.get_by_role("alert")).to_have_text("This reset link is invalid or has expired.")
    expect(page.get_by_label("New password")).to_be_hidden()
    expect(page).to_have_url(server.base + "/reset-password")
    expect(page.get_by_role("link", name="Send me a new link")).to_have_attribute("href", "/forgot-password")
    shot(page, "reset-password-invalid")


def test_the_emailed_link_verifies_the_email_and_the_account_page_sends_a_new_one(verifying_server, page: Page):
    server, address = verifying_server, new_email()
    register = urllib.request.Request(
        server.base + "/auth/register",
        data=json.dumps({"email": address, "password": PASSWORD}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(register, timeout=10) as response:
        assert response.status == 201
    first = server.verify_link(address)

    # Until verified, the account page says so and sends the link again.
    sign_in(page, server.base, address, PASSWORD)
    unverified = page.locator("#unverified")
    expect(unverified).to_contain_text("Your email is not verified yet")
    unverified.get_by_role("button", name="Send the link again").click()
    expect(unverified.get_by_role("status")).to_have_text("Verification email sent")
    shot(page, "account-unverified", full_page=False)
    link = server.verify_link(address)
    assert link != first, "a new link"

    # The page takes the token out of the address bar and sends it when asked.
    page.goto(link)
    expect(page).to_have_url(server.base + "/verify-email")
    shot(page, "verify-email")
    page.get_by_role("button", name="Verify my email").click()
    expect(page.get_by_text("Email verified successfully")).to_be_visible()

    # The superseded link is refused plainly.
    page.goto(first)
    page.get_by_role("button", name="Verify my email").click()
    expect(page.get_by_role("alert")).to_have_text("This verification link is invalid, has expired or was already used.")

    # Still signed in (the session keeps the key): the account page no longer asks.
    page.goto(server.base + "/account")
    expect(page.get_by_text(f"Signed in as {address}.")).to_be_visible()
    expect(page.get_by_text("Free plan")).to_be_visible()
    expect(page.locator("#unverified")).to_be_hidden()


def test_too_many_failed_sign_ins_say_when_to_try_again(server, page: Page):
    # The server allows 3 failed password checks per email in 15 minutes.
    page.goto(server.base + "/")
    page.get_by_label("Email", exact=True).fill(new_email())
    page.get_by_label("Password", exact=True).fill("Wrong-Guess-99")
    button = page.get_by_role("button", name="Sign in")
    message = page.get_by_role("alert")
    for _ in range(4):
        button.click()
        expect(button).to_be_enabled()
        expect(message).not_to_be_empty()
        if "Too many" in message.inner_text():
            break
        expect(message).to_have_text("Invalid credentials.")
    expect(message).to_have_text(
        re.compile(r"^Too many failed attempts, please try again later\. "
                   r"You can try again in \d+ minutes, at \d\d:\d\d( [AP]M)?\.$")
    )
    shot(page, "sign-in-throttled")
    page.emulate_media(color_scheme="dark")
    shot(page, "sign-in-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "sign-in-phone")


DEFAULT_SCOPES = [
    "entity:read", "roll:read", "chat:read", "encounter:read", "macro:list", "scene:read",
    "canvas:read", "effects:read", "user:read", "file:read", "world:info", "clients:read",
    "sheet:read", "events:subscribe", "search", "structure:read", "dnd5e",
]


def sign_up(page: Page, base: str) -> tuple[str, str]:
    """A new account, signed in on its account page: (email, master key)."""
    address = new_email()
    page.goto(base + "/signup")
    page.get_by_label("Email", exact=True).fill(address)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    # Registering hashes a password (argon2, in a debug build): allow a busy machine time.
    expect(page).to_have_url(base + "/account", timeout=20_000)
    master = page.get_by_label("Master API key")
    expect(master).to_have_value(re.compile(r"^frm_\w+$"))
    return address, master.input_value()


def listed_keys(server, key: str) -> list[dict]:
    status, _, body = server.get("/auth/api-keys", key=key)
    assert status == 200, body
    return json.loads(body)["keys"]


def test_a_read_only_key_is_created_then_edited_in_the_dialog(server, page: Page):
    base = server.base
    _, key = sign_up(page, base)
    scoped = page.get_by_role("region", name="Scoped keys")
    picker = scoped.get_by_role("group", name="What the key may do")

    # The picker starts at the relay's default set, grouped by area.
    expect(picker.get_by_role("checkbox", checked=True)).to_have_count(17)
    expect(picker.get_by_role("checkbox")).to_have_count(32)
    expect(picker).to_contain_text("17 of 32 scopes ticked")
    for name in DEFAULT_SCOPES:
        expect(picker.get_by_label(name)).to_be_checked()
    expect(picker.get_by_role("group", name="Rolls").get_by_label("roll:execute")).not_to_be_checked()
    expect(picker.get_by_role("group", name="Run code in the world")).to_contain_text("execute-js")

    # Untick all but roll:read, one of them with the keyboard.
    picker.get_by_label("entity:read").focus()
    page.keyboard.press("Space")
    expect(picker.get_by_label("entity:read")).not_to_be_checked()
    for name in DEFAULT_SCOPES:
        if name not in ("roll:read", "entity:read"):
            picker.get_by_label(name).uncheck()
    expect(picker).to_contain_text("1 of 32 scopes ticked")
    scoped.get_by_label("Name", exact=True).fill("Dice log")
    scoped.get_by_label("Daily limit").fill("100")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/auth/api-keys")) as sent:
        scoped.get_by_role("button", name="Create key").click()
    assert sent.value.post_data_json["scopes"] == ["roll:read"]
    assert sent.value.post_data_json["dailyLimit"] == 100
    expect(scoped.get_by_label("New scoped key")).to_have_value(re.compile(r"^frs_\w+$"))
    row = scoped.get_by_role("row").filter(has_text="Dice log")
    expect(row).to_contain_text("1 scope")
    expect(row).to_contain_text("100 / day")
    row.get_by_text("1 scope").click()
    expect(row.get_by_role("list", name="Scopes of Dice log").get_by_role("listitem")).to_have_text(["roll:read"])
    # The form is ready for the next key: back to the default set.
    expect(picker.get_by_role("checkbox", checked=True)).to_have_count(17)
    [created] = listed_keys(server, key)
    assert created["scopes"] == ["roll:read"] and created["dailyLimit"] == 100

    # Edit it: more scopes and another daily limit; only what changed is sent.
    row.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog", name="Edit “Dice log”")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Name", exact=True)).to_have_value("Dice log")
    expect(dialog.get_by_label("Daily limit")).to_have_value("100")
    expect(dialog.get_by_label("Enabled")).to_be_checked()
    expect(dialog.get_by_role("checkbox", checked=True)).to_have_count(2)  # roll:read and Enabled
    dialog.get_by_label("roll:execute").check()
    dialog.get_by_label("chat:read").check()
    dialog.get_by_label("Daily limit").fill("250")
    shot(page, "account-edit-key", full_page=False)
    with page.expect_request(lambda r: r.method == "PATCH") as sent:
        dialog.get_by_role("button", name="Save changes").click()
    assert sent.value.post_data_json == {"dailyLimit": 250, "scopes": ["roll:read", "roll:execute", "chat:read"]}
    expect(dialog).to_be_hidden()
    expect(scoped.get_by_role("status").first).to_have_text("Key “Dice log” saved.")
    expect(row).to_contain_text("3 scopes")
    expect(row).to_contain_text("250 / day")
    expect(row.get_by_role("button", name="Edit")).to_be_focused()
    [edited] = listed_keys(server, key)
    assert edited["scopes"] == ["roll:read", "roll:execute", "chat:read"] and edited["dailyLimit"] == 250

    # The API's refusal is said in the dialog; Cancel (or Escape) leaves the key as it was.
    row.get_by_role("button", name="Edit").click()
    dialog.get_by_label("Expires at").fill("2020-01-01T10:00")
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "expiresAt must be an RFC 3339 timestamp in the future. "
        "Choose an expiry date and time in the future, or leave it empty."
    )
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(row.get_by_role("button", name="Edit")).to_be_focused()
    assert listed_keys(server, key)[0]["expiresAt"] is None

    # Disabled from the dialog, the daily limit removed.
    row.get_by_role("button", name="Edit").click()
    dialog.get_by_label("Enabled").uncheck()
    dialog.get_by_label("Daily limit").fill("")
    with page.expect_request(lambda r: r.method == "PATCH") as sent:
        dialog.get_by_role("button", name="Save changes").click()
    assert sent.value.post_data_json == {"dailyLimit": None, "enabled": False}
    expect(row).to_contain_text("Disabled")
    expect(row).not_to_contain_text("/ day")
    [disabled] = listed_keys(server, key)
    assert disabled["enabled"] is False and disabled["dailyLimit"] is None
    shot(page, "account-scopes")


def test_ticking_a_scope_that_runs_code_shows_a_warning(server, page: Page):
    sign_up(page, server.base)
    scoped = page.get_by_role("region", name="Scoped keys")
    picker = scoped.get_by_role("group", name="What the key may do")
    warning = picker.get_by_role("alert")
    expect(warning).to_be_hidden()
    danger = picker.get_by_role("group", name="Run code in the world")
    expect(danger.get_by_text("dangerous")).to_have_count(3)
    danger.get_by_label("execute-js").check()
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("Careful: “execute-js” can run any code in your world")
    danger.get_by_label("macro:write").check()
    expect(warning).to_contain_text("“macro:write” and “execute-js” can run any code")
    shot(page, "account-dangerous-scope", full_page=False)
    picker.get_by_role("button", name="Default set").click()
    expect(warning).to_be_hidden()
    expect(picker.get_by_role("checkbox", checked=True)).to_have_count(17)
    picker.get_by_role("button", name="None").click()
    expect(picker).to_contain_text("0 of 32 scopes ticked")


def test_a_key_made_before_scopes_is_offered_to_narrow(server, page: Page):
    base = server.base
    _, key = sign_up(page, base)
    status, body = server.send("POST", "/auth/api-keys", key, {"name": "Old bot"})
    assert status == 201, body

    # The list as the API answers it for a key made before scopes: `scopes: null`.
    def before_scopes(route):
        answer = route.fetch()
        keys = answer.json()
        for k in keys["keys"]:
            k["scopes"] = None
        route.fulfill(response=answer, json=keys)

    page.route("**/auth/api-keys", before_scopes, times=1)
    page.reload()
    scoped = page.get_by_role("region", name="Scoped keys")
    row = scoped.get_by_role("row").filter(has_text="Old bot")
    expect(row).to_contain_text("Every scope (made before scopes)")
    row.get_by_role("button", name="Narrow…").click()
    dialog = page.get_by_role("dialog", name="Edit “Old bot”")
    expect(dialog).to_contain_text("This key can use every scope")
    expect(dialog).to_contain_text("32 of 32 scopes ticked")
    dialog.get_by_role("button", name="Default set").click()
    with page.expect_request(lambda r: r.method == "PATCH") as sent:
        dialog.get_by_role("button", name="Save changes").click()
    assert sent.value.post_data_json == {"scopes": DEFAULT_SCOPES}
    expect(dialog).to_be_hidden()
    expect(row).to_contain_text("17 scopes (default set)")
    assert listed_keys(server, key)[0]["scopes"] == DEFAULT_SCOPES


def test_an_account_from_the_relay_signs_in_without_a_key_to_show(server, page: Page):
    base = server.base
    address, _ = sign_up(page, base)
    sign_out(page, base)

    # The login answer of an account imported from the relay 3.x.
    def from_the_relay(route):
        answer = route.fetch()
        data = answer.json()
        data.update(apiKey=None, apiKeyAvailable=False)
        route.fulfill(response=answer, json=data)

    page.route("**/auth/login", from_the_relay)
    page.get_by_label("Email", exact=True).fill(address)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(base + "/account")
    api_key = page.get_by_role("region", name="API key")
    expect(api_key).to_contain_text("Your key came from the relay: keep using it, or regenerate it to see it here.")
    expect(api_key.get_by_label("Master API key")).to_be_hidden()
    expect(page.get_by_role("region", name="Scoped keys")).to_be_hidden()
    shot(page, "account-relay-key", full_page=False)

    page.get_by_role("button", name="Regenerate key").click()
    api_key.get_by_label("Password", exact=True).fill(PASSWORD)
    api_key.get_by_role("button", name="Confirm").click()
    expect(api_key.get_by_role("status")).to_contain_text("Your new key is active")
    master = api_key.get_by_label("Master API key")
    expect(master).to_have_value(re.compile(r"^frm_\w+$"))
    expect(page.get_by_role("region", name="Scoped keys")).to_be_visible()
    expect(page.get_by_role("region", name="Usage")).to_contain_text("of 1,000 requests")
    assert server.get("/auth/user-data", key=master.input_value())[0] == 200
    sign_out(page, base)


def test_i_think_my_key_leaked_replaces_every_key_from_the_reset_link(server, page: Page):
    base = server.base
    address, key = sign_up(page, base)
    status, created = server.send("POST", "/auth/api-keys", key, {"name": "Discord bot"})
    assert status == 201, created
    sign_out(page, base)

    # "I think my API key leaked" on the forgot-password page...
    page.goto(base + "/forgot-password")
    page.get_by_label("Email", exact=True).fill(address)
    page.get_by_label("I think my API key leaked").check()
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_role("alert")).to_contain_text("a password reset link has been sent")

    # ...sends a link whose page offers the replacement of every key, already ticked.
    link = server.reset_link(address)
    assert link.endswith("&revoke-keys=1"), link
    page.goto(link)
    revoke = page.get_by_label("Also replace my API key and stop every scoped key")
    expect(revoke).to_be_checked()
    expect(page).to_have_url(base + "/reset-password")
    page.get_by_label("New password").fill("Fresh-Start-2027")
    shot(page, "reset-password-revoke-keys")
    page.get_by_role("button", name="Reset password").click()
    expect(page.get_by_text("Password has been reset successfully")).to_be_visible()
    new_key = page.get_by_label("Your new master key")
    expect(new_key).to_have_value(re.compile(r"^frm_\w+$"))
    expect(page.get_by_text("Your API key has not changed")).to_be_hidden()
    replaced = new_key.input_value()
    assert replaced != key
    assert server.get("/auth/user-data", key=key)[0] == 401, "the leaked master key is dead"
    assert server.get("/auth/user-data", key=replaced)[0] == 200
    keys = listed_keys(server, replaced)
    assert [k["enabled"] for k in keys] == [False], keys
    shot(page, "reset-password-new-key")

def test_a_key_from_the_old_relay_is_asked_to_be_regenerated(server, page: Page):
    base = server.base
    sign_up(page, base)

    # user-data's answer for a key from the old relay (64 hex characters), still accepted.
    def from_the_old_relay(route):
        answer = route.fetch()
        data = answer.json()
        data.update(legacyKey=True, legacyKeysUntil="2027-01-01T00:00:00Z")
        route.fulfill(response=answer, json=data)

    page.route("**/auth/user-data", from_the_old_relay)
    page.reload()
    api_key = page.get_by_role("region", name="API key")
    expect(api_key).to_contain_text("Your key came from the old relay: regenerate it.")
    expect(api_key).to_contain_text("It stops working on")

    page.get_by_role("button", name="Regenerate key").click()
    api_key.get_by_label("Password", exact=True).fill(PASSWORD)
    api_key.get_by_role("button", name="Confirm").click()
    expect(api_key.get_by_role("status")).to_contain_text("Your new key is active")
    expect(api_key.get_by_text("Your key came from the old relay")).to_be_hidden()
    sign_out(page, base)


def test_recent_activity_lists_sign_ins_and_key_changes_with_where_from(server, page: Page):
    base = server.base
    address, _ = sign_up(page, base)
    activity = page.get_by_role("region", name="Recent activity")
    table = activity.get_by_role("table", name="Your account's recent security events")
    expect(table.get_by_role("cell", name="Nothing yet.")).to_be_visible()

    # A wrong password, then the right one: both are listed, newest first.
    sign_out(page, base)
    page.get_by_label("Email", exact=True).fill(address)
    page.get_by_label("Password", exact=True).fill("Wrong-Guess-99")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid credentials.")
    sign_in(page, base, address, PASSWORD)
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Signed in")
    expect(rows.nth(1)).to_contain_text("Wrong password")
    user_agent = page.evaluate("() => navigator.userAgent")
    for n in range(2):
        expect(rows.nth(n).get_by_role("cell").nth(2)).to_have_text(f"127.0.0.1 · {user_agent}")

    # A scoped key created on the page shows up at once.
    scoped = page.get_by_role("region", name="Scoped keys")
    scoped.get_by_label("Name", exact=True).fill("Discord bot")
    scoped.get_by_role("button", name="Create key").click()
    expect(scoped.get_by_label("New scoped key")).to_have_value(re.compile(r"^frs_\w+$"))
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Scoped key created")
    activity.scroll_into_view_if_needed()
    shot(page, "account-activity", full_page=False)
