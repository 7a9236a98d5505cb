// The issue list (filters, chips, pages) is swapped whole by htmx. After a swap the focus goes
// back to the control that was used, or, when that control left with its chip, to the list of
// chosen filters (else the count): not to another chip's button, which htmx would then send
// with the form's next change. The new count is said in a status region outside the list.
(() => {
  "use strict";

  /** A selector that finds ``control`` again in the new list: by id, else by name and value. */
  let returnTo = null;
  let chipIndex = -1;
  let pending = false; // a request of the list is on its way

  function selectorOf(control) {
    if (!(control instanceof Element) || control === document.body) return null;
    if (control.id) return `#${CSS.escape(control.id)}`;
    if (control.name) return `[name="${CSS.escape(control.name)}"][value="${CSS.escape(control.value || "")}"]`;
    return null;
  }

  document.addEventListener("htmx:beforeRequest", (event) => {
    const list = document.getElementById("issue-list");
    if (!list || !list.contains(event.detail.elt)) return;
    pending = true;
    const active = document.activeElement;
    returnTo = list.contains(active) ? selectorOf(active) : null;
    const chips = Array.from(list.querySelectorAll(".filter-chip__remove"));
    chipIndex = chips.indexOf(active);
  });

  document.addEventListener("htmx:afterSettle", () => {
    if (!pending) return;
    pending = false;
    const list = document.getElementById("issue-list");
    const status = document.getElementById("issue-list-status");
    const count = document.getElementById("issue-count");
    if (status && count) status.textContent = count.textContent;
    if (!list || list.contains(document.activeElement) || (!returnTo && chipIndex < 0)) return;
    let target = returnTo && list.querySelector(returnTo);
    if (!target && chipIndex >= 0) target = list.querySelector(".filter-chips");
    if (!target) target = count;
    if (target) target.setAttribute("tabindex", "-1");
    returnTo = null;
    chipIndex = -1;
    if (target) target.focus();
  });
})();
