// The board's cards move by drag and drop (SortableJS, by a card's handle, so the board still
// scrolls on a phone) and by each card's own form (a column and Move, or one place up or down),
// which works without this script. Both post to the move endpoint through htmx and swap in the
// columns it answers; a refused move puts the card back. What happened is said in #board-status.
(() => {
  "use strict";

  /** A card just dropped: its id, and where it came from (to put it back if the move is
   * refused), until its request starts. Each request then carries its own move (see below), so
   * two moves on their way at once are each said and undone for their own card. */
  let dropping = null;
  /** How many moves are on their way. */
  let moving = 0;

  const status = () => document.getElementById("board-status");

  function say(text, isError) {
    const region = status();
    if (!region) return;
    region.textContent = text;
    region.classList.toggle("board-status--error", Boolean(isError));
  }

  /** Where a card is now, as people say it: "In review, 2 of 5". */
  function whereIs(cardId) {
    const card = document.getElementById(cardId);
    const list = card && card.closest(".board-column__cards");
    if (!list) return null;
    const cards = Array.from(list.querySelectorAll(":scope > .board-card"));
    return `${list.dataset.label}, ${cards.indexOf(card) + 1} of ${list.dataset.count}`;
  }

  /** The reason a refused move (no board came back) was refused. */
  function refusal(ref, xhr) {
    if (!xhr || !xhr.status) return `${ref} was not moved: the server could not be reached.`;
    if (xhr.status === 403) return `${ref} was not moved: you may no longer move cards on this board.`;
    if (xhr.status === 422) return `${ref} was not moved: that place changed meanwhile. Reload the board.`;
    return `${ref} was not moved (error ${xhr.status}). Reload the board and try again.`;
  }

  /** Put a dropped card back where it was: the ``index``-th card of the column ``list``. */
  function putBack(origin) {
    if (!origin) return;
    const others = Array.from(origin.list.querySelectorAll(":scope > .board-card")).filter(
      (card) => card !== origin.card,
    );
    const next = others[origin.index] || origin.list.querySelector(":scope > .board-more");
    origin.list.insertBefore(origin.card, next);
  }

  /** The control of the card's form that had the focus, to give it back after the swap. */
  function focusedControl(form) {
    const active = document.activeElement;
    if (!active || !form.contains(active)) return null;
    return active.name === "step" ? `[name="step"][value="${active.value}"]` : active.tagName.toLowerCase();
  }

  function cardOf(form) {
    return form.closest(".board-card");
  }

  /** The move a request of a card's form is making, or null for any other request. */
  function moveOf(event) {
    const config = event.detail.requestConfig;
    return (config && config.boardMove) || null;
  }

  document.addEventListener("htmx:beforeRequest", (event) => {
    const form = event.detail.elt;
    if (!form.matches || !form.matches(".board-card__move") || !event.detail.requestConfig) return;
    const card = cardOf(form);
    const origin = dropping && dropping.cardId === card.id ? dropping.origin : null;
    dropping = null;
    event.detail.requestConfig.boardMove = {
      cardId: card.id,
      ref: card.dataset.ref,
      focus: focusedControl(form),
      origin,
    };
    moving += 1;
    setBusy();
  });

  // A drag leaves empty style attributes on the cards (SortableJS's animation). htmx copies the
  // attributes of an element being replaced onto its new copy while it settles, and the content
  // security policy refuses a style attribute set that way: the old cards lose theirs first.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    if (target && target.id === "board-columns") {
      target.querySelectorAll("[style]").forEach((element) => element.removeAttribute("style"));
    }
  });

  // htmx answers here once the columns that came back are swapped in and taken over: the page
  // sets no settle delay (base.html's htmx-config), so a form swapped in is never left for a
  // moment as a plain form, which a quick second key press would send, loading the whole page.
  document.addEventListener("htmx:afterRequest", (event) => {
    const move = moveOf(event);
    if (!move) return;
    moving -= 1;
    setBusy();
    const xhr = event.detail.xhr;
    if (!event.detail.successful) {
      putBack(move.origin);
      say(refusal(move.ref, xhr), true);
      return;
    }
    announce(move, xhr.status);
  });

  function announce(move, statusCode) {
    if (statusCode === 409) {
      say("", false); // the board that came back says why, in an alert
    } else {
      const where = whereIs(move.cardId);
      say(where ? `${move.ref} moved: ${where}.` : `${move.ref} moved.`, false);
    }
    const card = document.getElementById(move.cardId);
    if (move.focus && card) {
      const control = card.querySelector(`.board-card__move ${move.focus}`);
      if (control) control.focus();
    }
  }

  /** While a move is on its way the columns are busy (aria-busy) and take no drop. */
  function setBusy() {
    const columns = document.getElementById("board-columns");
    if (columns && moving > 0) columns.setAttribute("aria-busy", "true");
    else if (columns) columns.removeAttribute("aria-busy");
    document.querySelectorAll(".board-column__cards").forEach((list) => {
      const sortable = window.Sortable && Sortable.get(list);
      if (sortable) sortable.option("disabled", moving > 0);
    });
  }

  /** The card's place after a drop: above the next card, else below the one before it (the
   * column may have more cards below, not loaded yet), else at the bottom of an empty column. */
  function place(card) {
    let next = card.nextElementSibling;
    while (next && !next.matches(".board-card")) next = next.nextElementSibling;
    if (next) return { before: next.id.replace(/^card-/, "") };
    let previous = card.previousElementSibling;
    while (previous && !previous.matches(".board-card")) previous = previous.previousElementSibling;
    if (previous) return { after: previous.id.replace(/^card-/, "") };
    return {};
  }

  function dropped(event) {
    const card = event.item;
    const form = card.querySelector(".board-card__move");
    const list = card.parentElement;
    if (!form || (event.from === event.to && event.oldDraggableIndex === event.newDraggableIndex)) return;
    dropping = { cardId: card.id, origin: { card, list: event.from, index: event.oldDraggableIndex } };
    const values = { state: list.dataset.state, before: "", after: "", ...place(card) };
    htmx.ajax("POST", form.getAttribute("action"), {
      source: form,
      values,
      target: "#board-columns",
      swap: "outerHTML",
    });
  }

  function makeSortable(list) {
    if (Sortable.get(list)) return;
    Sortable.create(list, {
      group: "board",
      draggable: ".board-card",
      handle: ".board-card__handle",
      forceFallback: true,
      fallbackTolerance: 3,
      animation: 150,
      ghostClass: "board-card--ghost",
      chosenClass: "board-card--chosen",
      dragClass: "board-card--dragged",
      scroll: true,
      bubbleScroll: true,
      onEnd: dropped,
    });
  }

  function enable(root) {
    if (!window.Sortable) return;
    const board = root.matches && root.matches("#board-columns") ? root : root.querySelector("#board-columns");
    if (!board || !board.hasAttribute("data-movable")) return;
    board.querySelectorAll(".board-column__cards").forEach(makeSortable);
  }

  htmx.onLoad(enable);
})();
