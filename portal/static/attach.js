/* Lists loaded when they are opened: <details data-attach-src="URL"> with a [data-attach-list] inside.
 *
 * The tasks page's "Attach documents from your vault" list is not built with the page: most visits
 * never open it. When the person opens it, the fragment at data-attach-src (the list's form field,
 * rendered by the server) is fetched once and put in place of the "Show my documents" link. Without
 * this file that link asks for the whole page with the list in it. No inline script (strict CSP).
 */
(function () {
  "use strict";

  var vi = (document.documentElement.lang || "").toLowerCase().indexOf("vi") === 0;
  var TEXT = vi
    ? { loading: "Đang tải danh sách tài liệu…", failed: "Không tải được danh sách. Đóng rồi mở lại để thử lại." }
    : { loading: "Loading your documents…", failed: "The list could not be loaded. Close it and open it again to retry." };

  function say(target, text, isError) {
    var p = document.createElement("p");
    p.className = isError ? "error" : "hint";
    if (isError) p.setAttribute("role", "alert");
    p.textContent = text;
    target.replaceChildren(p);
  }

  function load(details) {
    var target = details.querySelector("[data-attach-list]");
    if (!target || target.querySelector("[data-attach-loaded]") || details.hasAttribute("data-attach-busy")) return;
    if (!window.fetch || !window.DOMParser) return; /* the link in the list still works */
    details.setAttribute("data-attach-busy", "");
    say(target, TEXT.loading, false);
    fetch(details.getAttribute("data-attach-src"), {
      credentials: "same-origin", headers: { Accept: "text/html" }
    }).then(function (response) {
      if (!response.ok) throw new Error(String(response.status));
      return response.text();
    }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-attach-loaded]");
      if (!fresh) throw new Error("no list in the answer");
      target.replaceChildren(document.importNode(fresh, true));
      if (window.portal) window.portal.enhance(target);
    }).catch(function () {
      say(target, TEXT.failed, true);
    }).then(function () {
      details.removeAttribute("data-attach-busy");
    });
  }

  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (details instanceof HTMLDetailsElement && details.open && details.hasAttribute("data-attach-src")) {
      load(details);
    }
  }, true); /* toggle does not bubble: listen while it is captured */
})();
