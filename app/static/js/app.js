// Worklane's own script, loaded in <head>: pages work without it; with it, the navigation folds
// into a Menu button on small screens.
document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", () => {
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
});
