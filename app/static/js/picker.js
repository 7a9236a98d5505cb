// Searchable pickers for people and labels. A <select multiple data-picker> (which works alone
// without this script, and which the form still sends) is shown as what is chosen, each with a
// button that takes it off, above a box that finds the others as you type and a checkbox for
// each. Enter in the box chooses the first match. With data-picker-create="<id>" (labels), a name
// that matches nothing can be created: it goes in that text field (which the form sends, and the
// server creates and adds on save), shown as a chip marked new.
(() => {
  "use strict";

  let made = 0;

  function element(tag, attributes = {}, text = "") {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  function make(select) {
    if (select.dataset.pickerReady) return;
    select.dataset.pickerReady = "true";
    const id = `picker-${(made += 1)}`;
    const label = document.querySelector(`label[for="${select.id}"]`);
    const name = (label ? label.textContent : select.name).trim();
    const lower = name.toLowerCase();

    const box = element("div", { class: "picker" });
    const chosen = element("ul", { class: "picker__chosen", "aria-label": `Chosen ${lower}` });
    const filter = element("input", {
      type: "search",
      id: `${id}-find`,
      class: "picker__find",
      placeholder: `Find ${lower}…`,
      autocomplete: "off",
      "aria-controls": `${id}-options`,
    });
    const options = element("div", { class: "picker__options", id: `${id}-options`, role: "group" });
    const none = element("p", { class: "picker__none muted", hidden: "" }, "Nothing matches.");
    const creating = select.dataset.pickerCreate && document.getElementById(select.dataset.pickerCreate);
    const create = element("button", { type: "button", class: "button button--small picker__create", hidden: "" });
    if (creating) {
      const field = creating.closest(".field");
      if (field && !field.classList.contains("field--error")) field.hidden = true; // the picker makes it
      create.addEventListener("click", () => {
        creating.value = filter.value.trim();
        filter.value = "";
        matches();
        showChosen();
        filter.focus();
      });
    }
    if (label) {
      label.setAttribute("for", filter.id); // the label now names the box that finds
      label.id = label.id || `${id}-label`;
      options.setAttribute("aria-labelledby", label.id);
    }

    const checks = new Map(); // option -> its checkbox
    for (const option of select.options) {
      const check = element("input", { type: "checkbox", id: `${id}-${option.index}` });
      check.checked = option.selected;
      check.addEventListener("change", () => {
        option.selected = check.checked;
        showChosen();
      });
      const item = element("div", { class: "picker__option" });
      item.append(check, element("label", { for: check.id }, option.textContent));
      options.append(item);
      checks.set(option, check);
    }

    /** A chosen item: its text, and a button named "Remove <name>" that calls ``unchoose``. */
    function addChip(text, name, extraClass, unchoose) {
      const chip = element("li", { class: `picker__chip ${extraClass}`.trim() }, text);
      const remove = element("button", { type: "button", class: "picker__remove", "aria-label": `Remove ${name}` }, "×");
      remove.addEventListener("click", () => {
        unchoose();
        showChosen();
        filter.focus();
      });
      chip.append(remove);
      chosen.append(chip);
    }

    function showChosen() {
      chosen.replaceChildren();
      for (const option of select.options) {
        if (!option.selected) continue;
        addChip(option.textContent, option.textContent, "", () => {
          option.selected = false;
          checks.get(option).checked = false;
        });
      }
      const typed = creating ? creating.value.trim() : "";
      if (typed) addChip(`${typed} (new)`, typed, "picker__chip--new", () => (creating.value = ""));
      chosen.hidden = chosen.children.length === 0;
    }

    function matches() {
      const words = filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      let shown = 0;
      for (const [option, check] of checks) {
        const text = option.textContent.toLowerCase();
        const hit = words.every((word) => text.includes(word));
        check.parentElement.hidden = !hit;
        if (hit) shown += 1;
      }
      none.hidden = shown > 0;
      if (creating) {
        const typed = filter.value.trim();
        const exact = [...checks.keys()].some((option) => option.textContent.trim().toLowerCase() === typed.toLowerCase());
        create.hidden = !typed || exact;
        create.textContent = `Create “${typed}”`;
      }
    }

    filter.addEventListener("input", matches);
    filter.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault(); // not the form's submit: Enter here chooses
      if (!create.hidden && !none.hidden) {
        create.click();
        return;
      }
      for (const [option, check] of checks) {
        if (check.parentElement.hidden || check.checked) continue;
        check.checked = option.selected = true;
        showChosen();
        filter.value = "";
        matches();
        return;
      }
    });

    // A form put back as it was (its reset): the boxes and chips follow its options again.
    if (select.form) {
      select.form.addEventListener("reset", () =>
        setTimeout(() => {
          for (const [option, check] of checks) check.checked = option.selected;
          filter.value = "";
          matches();
          showChosen();
        }),
      );
    }

    select.hidden = true;
    select.after(box);
    box.append(chosen, filter, options, none, create);
    showChosen();
  }

  function makeAll(root) {
    if (root.querySelectorAll) root.querySelectorAll("select[multiple][data-picker]").forEach(make);
  }

  document.addEventListener("DOMContentLoaded", () => makeAll(document));
  document.addEventListener("htmx:load", (event) => makeAll(event.detail.elt));
})();
