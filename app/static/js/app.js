// Worklane's own script, loaded in <head>: pages work without it; with it, the navigation folds
// into a Menu button on small screens, and an organization's pages answer the keyboard
// (shortcuts, listed by "?", and the command palette on Ctrl-K / Cmd-K); times read "3 hours ago",
// with the exact time in the person's zone on hover.
document.documentElement.classList.add("js");

// The service worker (app/static/js/sw.js): static files without a round trip, and the pages a
// signed-in person opened readable when the server cannot be reached.
if ("serviceWorker" in navigator && window.isSecureContext) {
  window.addEventListener("load", () => navigator.serviceWorker.register("/sw.js").catch(() => {}));
}

document.addEventListener("DOMContentLoaded", () => {
  setUpMenu();
  setUpTimes();
  fillBrowserTimeZone();
  for (const select of document.querySelectorAll("select[data-searchable]")) searchable(select);
  const keyboard = document.getElementById("keyboard");
  if (keyboard) setUpKeyboard(keyboard);
});

function setUpMenu() {
  const toggle = document.querySelector(".menu-toggle");
  const nav = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
  if (!nav) return;
  const open = (yes) => {
    toggle.setAttribute("aria-expanded", String(yes));
    nav.classList.toggle("is-open", yes);
  };
  toggle.addEventListener("click", () => open(toggle.getAttribute("aria-expanded") !== "true"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
      open(false);
      toggle.focus();
    }
  });
}

// A dialog opened with showModal that gives the focus back to where it was when it closes.
function modal(dialog) {
  let before = null;
  dialog.addEventListener("close", () => {
    if (before && before.isConnected) before.focus();
    before = null;
  });
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // a click on the backdrop
  });
  for (const button of dialog.querySelectorAll("[data-close-dialog]")) {
    button.addEventListener("click", () => dialog.close());
  }
  return {
    dialog,
    open() {
      const other = document.querySelector("dialog[open]");
      if (other) other.close();
      before = document.activeElement;
      dialog.showModal();
    },
  };
}

// True when the key belongs to what the person is typing, not to the page.
function typing(target) {
  return (
    target instanceof Element &&
    (target.isContentEditable || target.closest("input, textarea, select, [contenteditable]") !== null)
  );
}

const ROW_LINK = "a.issue-title, a.result__title, a.ref";

// The issues listed on the page, each a row (table row or list item) with its issue link.
function issueRows() {
  return Array.from(document.querySelectorAll("main tr, main li")).filter(
    (row) => row.querySelector(ROW_LINK) !== null,
  );
}

function setUpKeyboard(keyboard) {
  const shortcuts = modal(document.getElementById("shortcuts"));
  const palette = setUpPalette(document.getElementById("palette"), keyboard.dataset.paletteUrl);
  const actions = palette.actions;
  let awaitingGo = 0; // the time "g" was pressed, while the next key names where to go

  const moveSelection = (step) => {
    const rows = issueRows();
    if (!rows.length) return;
    const current = rows.findIndex((row) => row.classList.contains("is-selected"));
    const next = current < 0 ? (step > 0 ? 0 : rows.length - 1) : Math.min(Math.max(current + step, 0), rows.length - 1);
    if (current >= 0) rows[current].classList.remove("is-selected");
    rows[next].classList.add("is-selected");
    rows[next].querySelector(ROW_LINK).focus();
    rows[next].scrollIntoView({ block: "nearest" });
  };

  const focusSearch = () => {
    const field = document.querySelector("main input[type=search]");
    if (field) {
      field.focus();
      field.select();
    } else {
      window.location.assign(keyboard.dataset.searchUrl);
    }
  };

  document.addEventListener("keydown", (event) => {
    // (A browser's autofill sends keydown events without a key.)
    if (event.defaultPrevented || event.isComposing || typeof event.key !== "string") return;
    if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "k") {
      event.preventDefault();
      palette.toggle();
      return;
    }
    if (event.ctrlKey || event.altKey || event.metaKey || typing(event.target)) return;
    if (document.querySelector("dialog[open]")) return;
    const afterG = awaitingGo && Date.now() - awaitingGo < 1500;
    awaitingGo = 0;
    if (afterG) {
      const place = actions.find((action) => action.go === event.key);
      if (place) {
        event.preventDefault();
        window.location.assign(place.href);
      }
      return;
    }
    const selected = document.querySelector("main .is-selected");
    switch (event.key) {
      case "c": {
        const create = actions.find((action) => action.shortcut === "c");
        if (create) window.location.assign(create.href);
        break;
      }
      case "/":
        event.preventDefault();
        focusSearch();
        break;
      case "j":
        moveSelection(1);
        break;
      case "k":
        moveSelection(-1);
        break;
      case "g":
        awaitingGo = Date.now();
        break;
      case "?":
        event.preventDefault();
        shortcuts.open();
        break;
      case "Enter":
        // On the selected issue's link the browser follows it; elsewhere on the page, we do.
        if (selected && !event.target.closest("a, button, summary, [tabindex]:not(main)")) {
          window.location.assign(selected.querySelector(ROW_LINK).href);
        }
        break;
      default:
        return;
    }
  });
}

// The command palette: a text box over a list box of actions (from the page) and of the
// organization's projects and issues (asked of the server 150 ms after the last key; an older
// question is cancelled and a late answer ignored).
function setUpPalette(dialog, url) {
  const { open } = modal(dialog);
  const input = dialog.querySelector("[role=combobox]");
  const list = dialog.querySelector("[role=listbox]");
  const status = dialog.querySelector("[role=status]");
  const actions = Array.from(dialog.querySelectorAll("[data-palette-actions] li"), (item) => ({
    kind: "Page",
    label: item.textContent.trim(),
    words: `${item.textContent} ${item.dataset.words || ""}`.toLowerCase(),
    href: item.dataset.href,
    go: item.dataset.go,
    shortcut: item.dataset.shortcut,
  }));
  actions.filter((action) => action.shortcut === "c").forEach((action) => (action.kind = "Action"));
  let items = [];
  let found = [];
  let active = 0;
  let timer = null;
  let request = null;
  let asked = 0; // the number of the latest question; answers to earlier ones are dropped
  let waiting = false;
  let goWhenAnswered = false;

  const matchingActions = (words) => actions.filter((action) => words.every((word) => action.words.includes(word)));

  const show = () => {
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    items = [...matchingActions(words), ...found];
    active = Math.min(active, Math.max(items.length - 1, 0));
    list.replaceChildren(
      ...items.map((item, index) => {
        const option = document.createElement("li");
        option.id = `palette-option-${index}`;
        option.className = "palette__option";
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", String(index === active));
        option.dataset.index = String(index);
        const kind = document.createElement("span");
        kind.className = "palette__kind";
        kind.textContent = item.kind;
        const label = document.createElement("span");
        label.textContent = item.label;
        option.append(kind, " ", label);
        return option;
      }),
    );
    if (items.length) {
      input.setAttribute("aria-activedescendant", `palette-option-${active}`);
      document.getElementById(`palette-option-${active}`).scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
    status.textContent = waiting ? "Searching…" : words.length && !items.length ? "Nothing found." : "";
  };

  const go = () => {
    goWhenAnswered = false;
    const item = items[active];
    if (!item) return;
    dialog.close();
    window.location.assign(item.href);
  };

  const ask = (question) => {
    if (request) request.abort();
    request = new AbortController();
    const number = ++asked;
    fetch(`${url}?q=${encodeURIComponent(question)}`, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      signal: request.signal,
    })
      .then((response) => (response.ok ? response.json() : { projects: [], issues: [] }))
      .then((answer) => {
        if (number !== asked) return;
        found = [
          ...answer.projects.map((p) => ({ kind: "Project", label: `${p.key} ${p.name}`, href: p.url })),
          ...answer.issues.map((i) => ({ kind: "Issue", label: `${i.ref} ${i.title}`, href: i.url })),
        ];
        waiting = false;
        show();
        if (goWhenAnswered) go();
      })
      .catch((error) => {
        if (error.name === "AbortError" || number !== asked) return;
        waiting = false;
        found = [];
        show();
        status.textContent = "The search did not answer; try again.";
      });
  };

  const stop = () => {
    clearTimeout(timer);
    if (request) request.abort();
    asked += 1;
    waiting = false;
    goWhenAnswered = false;
  };

  input.addEventListener("input", () => {
    stop();
    found = [];
    active = 0;
    const question = input.value.trim();
    if (question) {
      waiting = true;
      timer = setTimeout(() => ask(question), 150);
    }
    show();
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!items.length) return;
      active = (active + (event.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
      show();
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (waiting) goWhenAnswered = true;
      else go();
    }
  });

  list.addEventListener("mousedown", (event) => event.preventDefault()); // the focus stays in the box
  list.addEventListener("click", (event) => {
    const option = event.target.closest("[role=option]");
    if (!option) return;
    active = Number(option.dataset.index);
    go();
  });

  dialog.addEventListener("close", stop);

  return {
    actions,
    toggle() {
      if (dialog.open) {
        dialog.close();
        return;
      }
      stop();
      input.value = "";
      found = [];
      active = 0;
      show();
      open();
      input.focus();
    },
  };
}

// --- times -------------------------------------------------------------------------------------
// The server writes each moment as <time datetime="…Z" data-relative title="…">, in UTC, the same
// for everyone (cached pages are shared). Here its text becomes "3 hours ago" (again every
// minute) and its title the exact time in the person's zone: the one on <html data-time-zone>
// (their account's), else the browser's, on load and after each htmx swap. The format matches
// app/core/dates.py.
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
}

function exactFormat(zone) {
  try {
    return new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
  } catch {
    return null; // a zone this browser does not know
  }
}

let exactTimes = null;

function personsZone() {
  if (exactTimes) return exactTimes;
  for (const zone of [document.documentElement.dataset.timeZone, browserTimeZone(), "UTC"]) {
    const format = zone && exactFormat(zone);
    if (format) return (exactTimes = { zone, format });
  }
  return null;
}

// "27 Nov 2026 14:05 Asia/Tokyo"
function exactTime(moment) {
  const { zone, format } = personsZone();
  const part = {};
  for (const { type, value } of format.formatToParts(moment)) part[type] = value;
  return `${Number(part.day)} ${MONTHS[Number(part.month) - 1]} ${part.year} ${part.hour}:${part.minute} ${zone}`;
}

function inWords(count, unit, future) {
  const units = `${count} ${unit}${count === 1 ? "" : "s"}`;
  return future ? `in ${units}` : `${units} ago`;
}

// How far from now a moment is, in words: "just now", "3 hours ago", "yesterday", "in 2 days".
function relativeTime(moment, now) {
  const seconds = (now - moment) / 1000;
  const future = seconds < 0;
  const gap = Math.abs(seconds);
  if (gap < 45) return "just now";
  const minutes = Math.round(gap / 60);
  if (minutes < 60) return inWords(minutes, "minute", future);
  const hours = Math.round(gap / 3600);
  if (hours < 24) return inWords(hours, "hour", future);
  const days = Math.round(gap / 86400);
  if (days === 1) return future ? "tomorrow" : "yesterday";
  if (days < 30) return inWords(days, "day", future);
  if (days < 365) return inWords(Math.max(1, Math.round(days / 30.44)), "month", future);
  return inWords(Math.max(1, Math.round(days / 365.25)), "year", future);
}

function showTimes(root) {
  const now = Date.now();
  for (const element of root.querySelectorAll("time[data-relative]")) {
    const moment = new Date(element.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) continue;
    const relative = relativeTime(moment, now);
    if (element.textContent !== relative) element.textContent = relative;
    const exact = exactTime(moment);
    if (element.title !== exact) element.title = exact;
  }
}

function setUpTimes() {
  if (!personsZone()) return;
  showTimes(document);
  // What htmx swaps in (htmx.onLoad's event; htmx.onLoad itself, called while the page's
  // DOMContentLoaded runs, would wait for that event again and never listen).
  document.addEventListener("htmx:load", (event) => showTimes(event.target));
  setInterval(() => showTimes(document), 60_000);
}

// Sign-up forms carry the browser's time zone; the server keeps it when it names a zone.
function fillBrowserTimeZone() {
  const zone = browserTimeZone();
  for (const input of document.querySelectorAll("input[data-browser-time-zone]")) {
    if (!input.value) input.value = zone;
  }
}

// A long select (the time zones) gets a filter field: typing "tokyo" or "new york" leaves only
// the options whose names hold the words (and the one selected: the choice stays the person's).
function searchable(select) {
  const filter = document.createElement("input");
  filter.type = "search";
  filter.className = "input select-filter";
  filter.placeholder = `Filter ${select.dataset.searchable}`;
  filter.setAttribute("aria-label", `Filter ${select.dataset.searchable}`);
  filter.setAttribute("aria-controls", select.id);
  const words = (text) => text.toLowerCase().replace(/[_/]+/g, " ");
  filter.addEventListener("input", () => {
    const wanted = words(filter.value).split(/\s+/).filter(Boolean);
    for (const option of select.options) {
      const name = words(`${option.value} ${option.text}`);
      option.hidden = !option.selected && !wanted.every((word) => name.includes(word));
    }
  });
  select.before(filter);
}
