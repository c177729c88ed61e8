/* Data entry: keying without the mouse, and the template form's rules shown by type.
 *
 * On a form marked data-keying (the keying page, a record's page):
 *   - Enter in a field moves to the next field; in the last field it saves (as the form would);
 *   - Ctrl+Enter (Cmd+Enter) saves from anywhere in the form;
 *   - Escape follows the page's skip link (a[data-skip]): the next document, nothing saved;
 *   - a form being sent is not sent a second time (the server makes one record anyway: the
 *     form's submission token).
 * On the template form: each field row shows only the rules of the type chosen (data-for).
 * Every page works without this file: Enter submits, the skip link is a link, all rules show.
 */
(function () {
  "use strict";

  function inputs(form) {
    return Array.prototype.filter.call(form.querySelectorAll("[data-key-input]"), function (el) {
      return !el.disabled && el.offsetParent !== null;
    });
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
    if (!(target instanceof Element)) return;
    var form = target.closest("form[data-keying]");
    if (event.key === "Escape") {
      var skip = document.querySelector("a[data-skip]");
      if (skip && (form || target === document.body)) {
        event.preventDefault();
        window.location.assign(skip.href);
      }
      return;
    }
    if (!form || event.key !== "Enter" || event.isComposing) return;
    if (event.ctrlKey || event.metaKey) {
      event.preventDefault();
      send(form);
      return;
    }
    if (!target.hasAttribute("data-key-input")) return;  /* a button or link: its own Enter */
    var fields = inputs(form);
    var at = fields.indexOf(target);
    event.preventDefault();
    if (at >= 0 && at < fields.length - 1) {
      fields[at + 1].focus();
      if (typeof fields[at + 1].select === "function" && fields[at + 1].tagName === "INPUT") fields[at + 1].select();
    } else {
      send(form);
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-keying")) return;
    if (form.hasAttribute("data-sending")) {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-sending", "");
  });

  /* The template form: the rules of the chosen type only. */
  function showRules(row) {
    var select = row.querySelector("select[data-field-type]");
    var type = select ? select.value : "";
    row.querySelectorAll("[data-for]").forEach(function (part) {
      var types = part.getAttribute("data-for").split(" ");
      part.hidden = types.indexOf(type) < 0;
    });
  }

  function enhance() {
    document.querySelectorAll("fieldset.template-field").forEach(function (row) {
      showRules(row);
      var select = row.querySelector("select[data-field-type]");
      if (select) select.addEventListener("change", function () { showRules(row); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", enhance);
  } else {
    enhance();
  }
})();
