/* Payroll's people pages: the attendance grid keyed like a spreadsheet, forms sent once, the first error focused.
 *
 * In a form marked data-grid (the month's attendance):
 *   - Enter moves to the same column of the next row, Shift+Enter to the row above; the arrow keys up and
 *     down do the same; Tab moves along the row (the browser's own order);
 *   - Ctrl+Enter (Cmd+Enter) saves the month from anywhere in the grid.
 * A form marked data-guard is not sent a second time while the first sending is on its way (a double click).
 * After a refusal, the first field marked aria-invalid takes the focus.
 * Every page works without this file: Enter saves the grid, the forms post as they are.
 */
(function () {
  "use strict";

  function cellInput(row, column) {
    if (!row) return null;
    var cells = row.querySelectorAll("[data-grid-input]");
    return cells[column] || null;
  }

  function move(input, step) {
    var row = input.closest("tr");
    var column = Array.prototype.indexOf.call(row.querySelectorAll("[data-grid-input]"), input);
    var next = step > 0 ? row.nextElementSibling : row.previousElementSibling;
    var target = cellInput(next, column);
    if (target) {
      target.focus();
      if (typeof target.select === "function") target.select();
    }
  }

  function send(form) {
    if (form.hasAttribute("data-sending")) return;
    if (typeof form.requestSubmit === "function") {
      form.requestSubmit();
    } else {
      form.submit();
    }
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLInputElement) || !target.hasAttribute("data-grid-input")) return;
    var form = target.closest("form[data-grid]");
    if (!form || event.isComposing) return;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      send(form);
    } else if (event.key === "Enter" || event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      move(target, (event.key === "ArrowUp" || (event.key === "Enter" && event.shiftKey)) ? -1 : 1);
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-guard")) return;
    if (form.hasAttribute("data-sending")) {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-sending", "");
  });

  function focusFirstError() {
    var wrong = document.querySelector("main form [aria-invalid='true']");
    if (wrong && typeof wrong.focus === "function") wrong.focus();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", focusFirstError);
  } else {
    focusFirstError();
  }
})();
