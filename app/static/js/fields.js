// An issue's fields changed where its page shows them (templates/issues/_issue_details.html).
// Without this script each field's small form stands under its value. With it, the forms are
// folded away: a field's Change button opens its form (the focus goes to its control), Escape or
// Cancel closes it unsaved (the focus back on the button). htmx posts the form and swaps the
// details back, a refused save (422, 409) with its message; afterwards the focus returns to the
// field's form when it is still open, else to its Change button.
(() => {
  "use strict";

  let saving = null; // the id of the form last sent

  function control(form) {
    return form.querySelector(".picker__find") || form.querySelector("select.input, input.input:not([type=hidden])");
  }

  function buttonOf(form) {
    return document.querySelector(`[aria-controls="${CSS.escape(form.id)}"]`);
  }

  function open(form, yes) {
    const button = buttonOf(form);
    form.classList.toggle("is-open", yes);
    if (button) button.setAttribute("aria-expanded", String(yes));
    if (yes) {
      const first = control(form);
      if (first) first.focus();
    } else {
      form.reset(); // what was chosen and not saved is let go
      if (button) button.focus();
    }
  }

  document.addEventListener("click", (event) => {
    if (!(event.target instanceof Element)) return;
    const button = event.target.closest("[data-field-edit]");
    if (button) {
      const form = document.getElementById(button.getAttribute("aria-controls"));
      if (form) open(form, !form.classList.contains("is-open"));
      return;
    }
    const cancel = event.target.closest("[data-field-cancel]");
    if (cancel) open(cancel.closest("form"), false);
  });

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !(event.target instanceof Element)) return;
    const form = event.target.closest("form.field-edit.is-open");
    if (!form) return;
    event.preventDefault();
    open(form, false);
  });

  document.addEventListener("htmx:beforeRequest", (event) => {
    const form = event.detail.elt;
    if (form instanceof HTMLFormElement && form.classList.contains("field-edit")) saving = form.id;
  });

  // A value the server refused (422) comes back with its message, to be shown in place.
  document.addEventListener("htmx:beforeSwap", (event) => {
    if (saving && event.detail.xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSettle", () => {
    if (!saving) return;
    const form = document.getElementById(saving);
    saving = null;
    if (!form) return;
    const target = form.classList.contains("is-open") ? control(form) : buttonOf(form);
    if (target) target.focus();
  });
})();
