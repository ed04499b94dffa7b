// Progressive enhancements for every page; each page works without them.
import { attach } from "./upload.js";
import { enhance } from "./selection.js";

for (const zone of document.querySelectorAll(".dropzone")) attach(zone);
for (const form of document.querySelectorAll("form#selection")) enhance(form);

for (const button of document.querySelectorAll("[data-copy]")) {
  button.addEventListener("click", async () => {
    const field = document.querySelector(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(field.value);
    } catch {
      field.select();
    }
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = "Copy link"), 2000);
  });
}

for (const opener of document.querySelectorAll("[data-dialog]")) {
  const dialog = document.getElementById(opener.dataset.dialog);
  opener.addEventListener("click", () => {
    if (opener.dataset.needsSelection !== undefined && !opener.form?.querySelector('input[name="item"]:checked')) {
      opener.form.dispatchEvent(new CustomEvent("selection-needed"));
      return;
    }
    dialog.showModal();
  });
  for (const closer of dialog.querySelectorAll("[data-close]")) {
    closer.addEventListener("click", () => dialog.close());
  }
  if (location.hash === `#${opener.closest("section")?.id}`) dialog.showModal();
}

// Download links of a file page: leave focus where it was.
document.documentElement.classList.add("js");
