// The selection of a folder listing: a "select everything shown" box, a count of what is
// selected, and a message instead of a request when an action is asked with nothing
// selected. The actions themselves are the form's own buttons (they work without this).

export function enhance(form) {
  const boxes = [...form.querySelectorAll('input[name="item"]')];
  const all = form.querySelector(".select-all");
  const count = form.querySelector(".selected-count");

  function update() {
    const chosen = boxes.filter((box) => box.checked).length;
    count.textContent = chosen ? `${chosen} selected:` : "With the selected items:";
    if (all) {
      all.checked = chosen === boxes.length && chosen > 0;
      all.indeterminate = chosen > 0 && chosen < boxes.length;
    }
  }

  if (all) {
    all.hidden = false;
    all.addEventListener("change", () => {
      for (const box of boxes) box.checked = all.checked;
      update();
    });
  }
  for (const box of boxes) box.addEventListener("change", update);

  function nothingChosen() {
    count.textContent = "Select at least one item first.";
  }
  form.addEventListener("selection-needed", nothingChosen);
  form.addEventListener("submit", (event) => {
    if (!boxes.some((box) => box.checked)) {
      event.preventDefault();
      nothingChosen();
    }
  });
  update();
}
