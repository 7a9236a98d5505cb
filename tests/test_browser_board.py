"""The board in a real headless Chromium: cards dragged between and within columns (SortableJS)
keep their place across reloads, the keyboard moves them too, viewers cannot, a card moved
meanwhile is not moved again, and the six columns fit a laptop's screen."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.core.tenancy import tenant_context
from app.extensions import db
from app.issues import services as issues
from app.models import Issue, Membership
from tests.accounts import browser_login
from tests.factories import OWNER, make_acme

pytestmark = pytest.mark.browser

CARDS = (("Alpha", "todo"), ("Bravo", "todo"), ("Charlie", "todo"), ("Delta", "in_progress"))


@pytest.fixture
def acme_board(app):
    """Acme's WEB board: WEB-1..3 in Todo, WEB-4 in progress; Grace a member, Vic a viewer."""
    with app.app_context():
        acme = make_acme({"grace@example.com": "member", "vic@example.com": "viewer"})
        for title, state in CARDS:
            acme.add_issue(title, state=state)
        db.session.commit()
        return acme.id


def refs(page, state: str) -> list[str]:
    """The references of a column's cards, in the order the board shows them."""
    return page.locator(f'ol[data-state="{state}"] > .board-card').evaluate_all(
        "cards => cards.map(card => card.dataset.ref)"
    )


def card(page, ref: str):
    return page.locator(f'.board-card[data-ref="{ref}"]')


def drag(page, ref: str, onto, below: bool = False) -> None:
    """Drag card ``ref`` by its handle over ``onto`` (a card: to its upper or lower half; a column's
    list) with the mouse, in small steps as a person would, and drop it there."""
    start = card(page, ref).locator(".board-card__handle").bounding_box()
    target = onto.bounding_box()
    x, y = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 4, y + 6, steps=4)
    ty = target["y"] + target["height"] * (0.8 if below else 0.2)
    page.mouse.move(target["x"] + target["width"] / 2, ty, steps=25)
    page.mouse.move(target["x"] + target["width"] / 2 + 2, ty + 1, steps=3)
    page.mouse.up()


def stored(app, org_id) -> dict[str, list[str]]:
    """Each column's issue references in rank order, as stored."""
    with app.app_context(), tenant_context(org_id):
        found = db.session.scalars(select(Issue).order_by(Issue.rank, Issue.id)).all()
        columns: dict[str, list[str]] = {}
        for issue in found:
            columns.setdefault(issue.state, []).append(issue.ref)
        return columns


def open_board(page, live_server, email: str = OWNER) -> None:
    browser_login(page, live_server, email)
    page.goto(live_server.url + "/acme/projects/WEB/board")
    page.wait_for_function("() => window.Sortable && document.querySelector('.board-column__cards')")


def test_a_card_dragged_to_another_column_stays_where_it_was_dropped(page, app, live_server, acme_board):
    """A card dropped above another card of another column, and one dropped into an empty
    column, are there after a reload, in the dropped position."""
    open_board(page, live_server)
    drag(page, "WEB-3", card(page, "WEB-4"))
    page.get_by_text("WEB-3 moved: In progress, 1 of 2.").wait_for()
    assert refs(page, "in_progress") == ["WEB-3", "WEB-4"]
    drag(page, "WEB-1", page.locator('ol[data-state="done"]'))
    page.get_by_text("WEB-1 moved: Done, 1 of 1.").wait_for()
    page.reload()
    assert refs(page, "todo") == ["WEB-2"]
    assert refs(page, "in_progress") == ["WEB-3", "WEB-4"]
    assert refs(page, "done") == ["WEB-1"]
    assert stored(app, acme_board) == {
        "todo": ["WEB-2"],
        "in_progress": ["WEB-3", "WEB-4"],
        "done": ["WEB-1"],
    }
    assert page.problems == [], "\n".join(page.problems)


def test_a_card_dragged_within_its_column_keeps_its_new_place(page, app, live_server, acme_board):
    """Dragging a card to the top of its column, then another to the bottom, is the order the
    board shows after a reload."""
    open_board(page, live_server)
    drag(page, "WEB-3", card(page, "WEB-1"))
    page.get_by_text("WEB-3 moved: Todo, 1 of 3.").wait_for()
    page.reload()
    assert refs(page, "todo") == ["WEB-3", "WEB-1", "WEB-2"]
    drag(page, "WEB-1", card(page, "WEB-2"), below=True)
    page.get_by_text("WEB-1 moved: Todo, 3 of 3.").wait_for()
    page.reload()
    assert refs(page, "todo") == ["WEB-3", "WEB-2", "WEB-1"]
    assert stored(app, acme_board)["todo"] == ["WEB-3", "WEB-2", "WEB-1"]
    assert page.problems == [], "\n".join(page.problems)


def test_a_card_moves_with_the_keyboard(page, app, live_server, acme_board):
    """The card's own buttons and its column menu move it from the keyboard: the move is said in
    the status region, the focus stays on the control, and the order is kept."""
    open_board(page, live_server)
    raise_bravo = page.get_by_role("button", name="Raise WEB-2 one place")
    raise_bravo.focus()
    page.keyboard.press("Enter")
    page.get_by_role("status").get_by_text("WEB-2 moved: Todo, 1 of 3.").wait_for()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Raise WEB-2 one place"
    with page.expect_response(lambda response: response.url.endswith("/move")):
        page.keyboard.press("Enter")  # already at the top: stays
    page.locator("#board-columns:not([aria-busy])").wait_for()
    assert refs(page, "todo") == ["WEB-2", "WEB-1", "WEB-3"]
    page.get_by_role("button", name="Lower WEB-1 one place").press("Enter")
    page.get_by_role("status").get_by_text("WEB-1 moved: Todo, 3 of 3.").wait_for()
    assert refs(page, "todo") == ["WEB-2", "WEB-3", "WEB-1"]
    menu = page.get_by_label("Move WEB-3 to")
    menu.focus()
    menu.select_option(label="In review")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.get_by_role("status").get_by_text("WEB-3 moved: In review, 1 of 1.").wait_for()
    page.reload()
    assert refs(page, "todo") == ["WEB-2", "WEB-1"]
    assert refs(page, "in_review") == ["WEB-3"]
    assert page.problems == [], "\n".join(page.problems)


def test_a_key_pressed_the_moment_the_columns_come_back_moves_through_the_board(
    page, app, live_server, acme_board
):
    """A card's control used the instant its move's answer is in is sent by the board, not as a
    plain form that would load the whole page, and each of the two moves is said."""
    open_board(page, live_server)
    page.evaluate("window.sameDocument = true")
    page.evaluate(
        """() => document.addEventListener("htmx:afterRequest", () => {
            document.querySelector('[aria-label="Lower WEB-1 one place"]').click();
        }, { once: true })"""
    )
    page.get_by_role("button", name="Raise WEB-2 one place").click()
    page.get_by_role("status").get_by_text("WEB-1 moved: Todo, 3 of 3.").wait_for()
    assert refs(page, "todo") == ["WEB-2", "WEB-3", "WEB-1"]
    assert page.evaluate("window.sameDocument") is True
    assert stored(app, acme_board)["todo"] == ["WEB-2", "WEB-3", "WEB-1"]
    assert page.problems == [], "\n".join(page.problems)


def test_the_move_controls_work_without_javascript(app, live_server, acme_board, page):
    """With the script off, a card's Lower button and its column menu still move it (plain forms)."""
    context = page.context.browser.new_context(java_script_enabled=False)
    plain = context.new_page()
    browser_login(plain, live_server, OWNER)
    plain.goto(live_server.url + "/acme/projects/WEB/board")
    assert not card(plain, "WEB-1").locator(".board-card__handle").is_visible()
    plain.get_by_role("button", name="Lower WEB-1 one place").click()
    plain.wait_for_url("**/acme/projects/WEB/board")
    assert refs(plain, "todo") == ["WEB-2", "WEB-1", "WEB-3"]
    plain.get_by_label("Move WEB-1 to").select_option(label="Done")
    card(plain, "WEB-1").get_by_role("button", name="Move", exact=True).click()
    plain.wait_for_url("**/acme/projects/WEB/board")
    assert refs(plain, "done") == ["WEB-1"]
    context.close()


def test_a_viewer_cannot_drag(page, app, live_server, acme_board):
    """A viewer's board has no handles and no move controls, and dragging a card changes nothing."""
    browser_login(page, live_server, "vic@example.com")
    page.goto(live_server.url + "/acme/projects/WEB/board")
    assert page.locator(".board-card__handle").count() == 0
    assert page.locator(".board-card__move").count() == 0
    title = card(page, "WEB-3").get_by_role("link").bounding_box()
    target = card(page, "WEB-4").bounding_box()
    page.mouse.move(title["x"] + 5, title["y"] + 5)
    page.mouse.down()
    page.mouse.move(target["x"] + 20, target["y"] + 10, steps=20)
    page.mouse.up()
    page.reload()
    assert refs(page, "todo") == ["WEB-1", "WEB-2", "WEB-3"]
    assert refs(page, "in_progress") == ["WEB-4"]
    assert page.problems == [], "\n".join(page.problems)


def test_a_refused_drop_puts_the_card_back(page, app, live_server, acme_board):
    """Grace, made a viewer after loading the board, drops a card: refused (403), it goes back
    where it was and the board says why."""
    open_board(page, live_server, "grace@example.com")
    with app.app_context(), tenant_context(acme_board):
        grace = db.session.scalars(select(Membership).where(Membership.role == "member")).one()
        grace.role = "viewer"
        db.session.commit()
    drag(page, "WEB-3", card(page, "WEB-4"))
    page.get_by_text("WEB-3 was not moved: you may no longer move cards on this board.").wait_for()
    assert refs(page, "todo") == ["WEB-1", "WEB-2", "WEB-3"]
    assert refs(page, "in_progress") == ["WEB-4"]
    assert stored(app, acme_board) == {"todo": ["WEB-1", "WEB-2", "WEB-3"], "in_progress": ["WEB-4"]}
    assert [p for p in page.problems if "403" not in p] == []


def test_a_drop_of_a_card_moved_meanwhile_says_so_and_shows_the_board_as_it_is(
    page, app, live_server, acme_board
):
    """Grace moves WEB-3 to Done after Olive loaded the board; Olive's drop of it is refused
    (409) with who moved it where, and the board then shows it in Done."""
    open_board(page, live_server)
    with app.app_context(), tenant_context(acme_board):
        issue = db.session.scalars(select(Issue).where(Issue.title == "Charlie")).one()
        grace = db.session.scalars(select(Membership).where(Membership.role == "member")).one().user
        issues.move_issue(issue, grace, "done")
        db.session.commit()
    drag(page, "WEB-3", card(page, "WEB-4"))
    page.get_by_role("alert").get_by_text("WEB-3 was not moved: Grace Hopper moved it to Done").wait_for()
    assert refs(page, "done") == ["WEB-3"]
    assert refs(page, "in_progress") == ["WEB-4"]
    assert refs(page, "todo") == ["WEB-1", "WEB-2"]
    assert stored(app, acme_board)["done"] == ["WEB-3"]
    assert [p for p in page.problems if "409" not in p] == []


def test_every_column_fits_a_laptop_screen(page, app, live_server, acme_board):
    """At 1,366 by 768 the six columns, Done and Cancelled too, are on the screen without scrolling."""
    page.set_viewport_size({"width": 1366, "height": 768})
    open_board(page, live_server)
    for name in ("Backlog", "Done", "Cancelled"):
        box = page.get_by_role("region", name=name).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1366, name
    assert page.locator(".board").evaluate("b => b.scrollWidth <= b.clientWidth")
    assert page.problems == [], "\n".join(page.problems)


def test_a_card_is_dragged_by_touch_on_a_phone(page, app, live_server, acme_board):
    """On a phone a finger on a card's handle drags the card (here to the top of its column); the
    page stays the phone's width and the order is kept."""
    phone = page.context.browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    page = phone.new_page()
    page.problems = []
    page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    open_board(page, live_server)
    cdp = phone.new_cdp_session(page)

    def touch(kind: str, x: float = 0, y: float = 0) -> None:
        points = [] if kind == "touchEnd" else [{"x": x, "y": y}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    # The Todo column at the left of the screen, away from the edges that scroll the board.
    page.locator(".board").evaluate("board => { board.scrollLeft = board.children[1].offsetLeft - 8; }")
    handle = card(page, "WEB-3").locator(".board-card__handle").bounding_box()
    target = card(page, "WEB-1").bounding_box()
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    touch("touchStart", x, y)
    steps = 25
    tx, ty = target["x"] + target["width"] / 2, target["y"] + target["height"] * 0.2
    for n in range(1, steps + 1):
        touch("touchMove", x + (tx - x) * n / steps, y + (ty - y) * n / steps)
        page.wait_for_timeout(15)
    touch("touchEnd")
    page.get_by_text("WEB-3 moved: Todo, 1 of 3.").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.reload()
    assert refs(page, "todo") == ["WEB-3", "WEB-1", "WEB-2"]
    assert page.problems == []
    phone.close()
