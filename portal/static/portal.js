/* Back-office portal: progressive enhancement only.
 *
 * Every page works without this file (forms post, links navigate, the workspace
 * switcher is a plain <details>). When it runs it adds:
 *   - data-confirm="Question?" on a <form> (or on its submit button): ask before submitting;
 *   - data-copy on any element: a "Copy" button after it that copies its text
 *     (data-copy="#id" copies another element's text instead);
 *   - the switcher <details> closes on a click outside it and on Escape;
 *   - a table.table not inside a .table-wrap is wrapped in one (sideways scroll on phones);
 *   - in a table.table-stack each cell gets its column's name (data-label), and the table is marked
 *     data-stacked: portal.css then shows each row as a card on a phone, nothing to scroll sideways;
 *   - data-refresh="seconds" on an element with an id (a job's progress): that element is fetched
 *     again in place after so many seconds, for as long as the fresh copy still has the attribute
 *     (never a meta refresh: it reloads the page under the reader, WCAG 2.2.1).
 *   - in a .field-check (intake's invoice fields), the field focused or pointed at is outlined on the page;
 * No inline script or style (strict CSP): behaviour hangs off data attributes and classes.
 */
(function () {
  "use strict";

  var vi = (document.documentElement.lang || "").toLowerCase().indexOf("vi") === 0;
  var TEXT = vi
    ? { copy: "Sao chép", copied: "Đã sao chép", failed: "Không sao chép được" }
    : { copy: "Copy", copied: "Copied", failed: "Could not copy" };

  /* ---- data-confirm ------------------------------------------------------------------ */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var submitter = event.submitter;
    var question = (submitter && submitter.getAttribute("data-confirm")) ||
      form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  /* ---- copy to clipboard ------------------------------------------------------------- */
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy failed")); }
    });
  }

  function sourceText(el) {
    var ref = el.getAttribute("data-copy");
    var target = ref && ref.charAt(0) === "#" ? document.querySelector(ref) : el;
    if (!target) return "";
    if (target.matches("ul, ol")) {
      return Array.prototype.map.call(target.querySelectorAll("li"), function (li) {
        return li.textContent.trim();
      }).join("\n");
    }
    var isField = target.matches("input, textarea, select");
    return (isField ? target.value : target.textContent).trim();
  }

  function addCopyButton(el) {
    if (el.hasAttribute("data-copy-ready")) return;
    el.setAttribute("data-copy-ready", "");
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy-button";
    button.textContent = el.getAttribute("data-copy-label") || TEXT.copy;
    var status = document.createElement("span");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    var timer = null;
    button.addEventListener("click", function () {
      copyText(sourceText(el)).then(function () {
        button.classList.add("copied");
        button.textContent = TEXT.copied;
        status.textContent = TEXT.copied;
      }, function () {
        status.textContent = TEXT.failed;
      }).then(function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          button.classList.remove("copied");
          button.textContent = el.getAttribute("data-copy-label") || TEXT.copy;
          status.textContent = "";
        }, 2000);
      });
    });
    el.insertAdjacentElement("afterend", status);
    el.insertAdjacentElement("afterend", button);
  }

  /* ---- the workspace switcher -------------------------------------------------------- */
  function closeSwitchers(except) {
    document.querySelectorAll("details.switcher[open]").forEach(function (d) {
      if (d !== except) d.removeAttribute("open");
    });
  }

  document.addEventListener("click", function (event) {
    var inside = event.target instanceof Element ? event.target.closest("details.switcher") : null;
    closeSwitchers(inside);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelector("details.switcher[open]");
    if (!open) return;
    open.removeAttribute("open");
    var summary = open.querySelector("summary");
    if (summary) summary.focus();
  });

  /* ---- tables ------------------------------------------------------------------------ */
  function wrapTable(table) {
    if (table.parentElement && table.parentElement.classList.contains("table-wrap")) return;
    var wrap = document.createElement("div");
    wrap.className = "table-wrap";
    wrap.tabIndex = 0; /* keyboard users can scroll it */
    var caption = table.querySelector("caption");
    if (caption) wrap.setAttribute("aria-label", caption.textContent.trim());
    table.parentNode.insertBefore(wrap, table);
    wrap.appendChild(table);
  }

  /* ---- invoice fields: the field being read or typed is outlined on the page -------------- */
  function markField(event) {
    var row = event.target.closest && event.target.closest("[data-field]");
    var check = row && row.closest(".field-check");
    if (!check) return;
    var name = row.getAttribute("data-field");
    check.querySelectorAll(".active").forEach(function (el) { el.classList.remove("active"); });
    check.querySelectorAll('rect[data-field="' + name + '"], tr[data-field="' + name + '"]').forEach(function (el) {
      el.classList.add("active");
    });
  }
  document.addEventListener("focusin", markField);
  document.addEventListener("mouseover", markField);

  /* ---- data-refresh ------------------------------------------------------------------ */
  function scheduleRefresh(region) {
    if (region.hasAttribute("data-refresh-scheduled")) return;
    region.setAttribute("data-refresh-scheduled", "");
    var seconds = parseInt(region.getAttribute("data-refresh"), 10) || 5;
    setTimeout(function () {
      if (!region.isConnected) return;
      fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.text();
        })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(region.id);
          if (!fresh) return;
          region.replaceWith(fresh);
          enhance(fresh);
        }, function () {  /* offline for a moment: try again later */
          region.removeAttribute("data-refresh-scheduled");
          scheduleRefresh(region);
        });
    }, seconds * 1000);
  }

  function labelCells(table) {
    var names = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
      return th.textContent.trim();
    });
    table.querySelectorAll("tbody tr").forEach(function (row) {
      Array.prototype.forEach.call(row.children, function (cell, i) {
        if (names[i] && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", names[i]);
      });
    });
    table.setAttribute("data-stacked", "");
  }

  function enhance(root) {
    root.querySelectorAll("[data-copy]").forEach(addCopyButton);
    root.querySelectorAll("table.table").forEach(wrapTable);
    root.querySelectorAll("table.table-stack").forEach(labelCells);
    if (root.matches && root.matches("[data-refresh][id]")) scheduleRefresh(root);
    root.querySelectorAll("[data-refresh][id]").forEach(scheduleRefresh);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  } else {
    enhance(document);
  }

  /* For pages that add content later (upload lists, job progress). */
  window.portal = { enhance: enhance };
})();
