/* The upload widget: drag and drop, one request per file, a progress bar and a result per file.
 *
 * Enhances <form data-upload> (portal/documents/templates/documents/_upload.html). Without
 * this file the form still posts all chosen files at once and the server answers with a page.
 * Each file goes in its own XHR so that each has its own progress bar and its own answer
 * (stored / already there / refused and why); a refused file never stops the others.
 * A file refused only because the chosen category does not take its kind (a CSV among
 * receipts) offers the categories that do, and goes again as one of them, alone.
 * When every upload on the page has finished, the page's lists ([data-upload-refresh])
 * are fetched again and swapped in place, so the new documents show without a reload.
 */
(function () {
  "use strict";

  var vi = (document.documentElement.lang || "").toLowerCase().indexOf("vi") === 0;
  var TEXT = vi ? {
    waiting: "Đang chờ", sending: "Đang tải lên", checking: "Đang kiểm tra và mã hoá",
    tooBig: "Tệp quá lớn: tối đa ", failed: "Không tải lên được. Kiểm tra kết nối rồi thử lại.",
    open: "Mở", done: "Xong. Tải lại trang để xem danh sách.", reload: "Tải lại",
    refreshed: "Xong: danh sách đã được cập nhật.", uploadAs: "Tải lên với loại này",
    category: "Loại phù hợp với tệp này"
  } : {
    waiting: "Waiting", sending: "Uploading", checking: "Checking and encrypting",
    tooBig: "Too large: files may be at most ", failed: "The upload failed. Check your connection and try again.",
    open: "Open", done: "Done. Reload the page to see the list.", reload: "Reload",
    refreshed: "Done: the list is up to date.", uploadAs: "Upload as this category",
    category: "A category that takes this file"
  };
  var running = 0; /* uploads in flight on the whole page: the lists are refreshed when none is left */
  var stored = false; /* a file was kept since the last refresh */

  function fieldsOf(form) {
    var data = [];
    form.querySelectorAll("input[type=hidden], select, input[type=text], input[type=month]").forEach(function (el) {
      if (el.name) data.push([el.name, el.value]);
    });
    return data;
  }

  function row(list, file) {
    var li = document.createElement("li");
    li.className = "upload-item";
    var name = document.createElement("strong");
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    var status = document.createElement("span");
    status.className = "upload-status";
    status.textContent = TEXT.waiting;
    li.appendChild(name); li.appendChild(bar); li.appendChild(status);
    list.appendChild(li);
    return { li: li, bar: bar, status: status };
  }

  function finish(item, ok, message, url) {
    item.li.classList.add(ok ? "ok" : "refused");
    item.bar.value = 100;
    item.bar.hidden = true;
    item.status.textContent = message;
    if (url) {
      var link = document.createElement("a");
      link.href = url; link.textContent = TEXT.open;
      item.status.appendChild(document.createTextNode(" "));
      item.status.appendChild(link);
    }
  }

  /* A refused file the chosen category cannot take: pick one that can, and send the file again alone. */
  function offerCategories(form, file, item, categories) {
    var box = document.createElement("span");
    box.className = "upload-recategorise";
    var label = document.createElement("label");
    label.textContent = TEXT.category + " ";
    var select = document.createElement("select");
    categories.forEach(function (c) {
      var option = document.createElement("option");
      option.value = c.value; option.textContent = c.label;
      select.appendChild(option);
    });
    label.appendChild(select);
    var button = document.createElement("button");
    button.type = "button"; button.textContent = TEXT.uploadAs;
    button.setAttribute("data-testid", "upload-as");
    button.addEventListener("click", function () {
      box.remove();
      item.li.classList.remove("refused");
      item.bar.hidden = false; item.bar.value = 0;
      running++;
      send(form, file, item, { category: select.value }).then(function (ok) { running--; settled(form, ok); });
    });
    box.appendChild(label); box.appendChild(button);
    item.status.appendChild(document.createTextNode(" "));
    item.status.appendChild(box);
  }

  function send(form, file, item, overrides) {
    return new Promise(function (resolve) {
      var limit = parseInt(form.getAttribute("data-limit"), 10);
      if (limit && file.size > limit) {
        finish(item, false, TEXT.tooBig + form.getAttribute("data-limit-text"));
        return resolve(false);
      }
      var body = new FormData();
      fieldsOf(form).forEach(function (pair) {
        if (!(overrides && pair[0] in overrides)) body.append(pair[0], pair[1]);
      });
      Object.keys(overrides || {}).forEach(function (name) { body.append(name, overrides[name]); });
      body.append("file", file, file.name); /* the fields go first: the server streams the file */
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        item.bar.value = Math.round(100 * e.loaded / e.total);
        item.status.textContent = e.loaded < e.total ? TEXT.sending + " " + item.bar.value + "%" : TEXT.checking;
      });
      xhr.addEventListener("load", function () {
        var answer = null;
        try { answer = JSON.parse(xhr.responseText); } catch (err) { answer = null; }
        if (answer && answer.results && answer.results.length) {
          var r = answer.results[0];
          finish(item, r.status !== "refused", r.message, r.url);
          if (r.categories && r.categories.length) offerCategories(form, file, item, r.categories);
          return resolve(r.status !== "refused");
        }
        finish(item, false, (answer && answer.error) || TEXT.failed);
        resolve(false);
      });
      xhr.addEventListener("error", function () { finish(item, false, TEXT.failed); resolve(false); });
      item.status.textContent = TEXT.sending;
      xhr.send(body);
    });
  }

  function uploadAll(form, files) {
    var list = form.querySelector("[data-upload-list]");
    var items = Array.prototype.map.call(files, function (f) { return [f, row(list, f)]; });
    /* Two at a time: quick for many small receipts, gentle on a phone's connection. */
    var next = 0, mine = 0, anyOk = false;
    running++;
    return new Promise(function (resolve) {
      function pump() {
        if (next >= items.length && mine === 0) { running--; return resolve(anyOk); }
        while (mine < 2 && next < items.length) {
          var pair = items[next++];
          mine++;
          send(form, pair[0], pair[1]).then(function (ok) { anyOk = anyOk || ok; mine--; pump(); });
        }
      }
      pump();
    });
  }

  /* Fetch this page again and swap each [data-upload-refresh] region for its new version. */
  function refresh() {
    var regions = document.querySelectorAll("[data-upload-refresh]");
    if (!regions.length || !window.fetch || !window.DOMParser) return Promise.resolve(false);
    return fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        regions.forEach(function (region) {
          var name = region.getAttribute("data-upload-refresh");
          var next = fresh.querySelector("[data-upload-refresh=\"" + name + "\"]");
          if (next) region.replaceWith(document.importNode(next, true));
        });
        init(); /* upload forms inside a swapped region (a request's items) are new */
        return true;
      })
      .catch(function () { return false; });
  }

  function note(form, text, withReload) {
    var old = form.querySelector("[data-upload-done]");
    if (old) old.remove();
    var p = document.createElement("p");
    p.setAttribute("data-upload-done", "");
    p.setAttribute("role", "status");
    p.className = "hint";
    p.textContent = text + " ";
    if (withReload) {
      var a = document.createElement("a");
      a.href = window.location.href; a.textContent = TEXT.reload;
      p.appendChild(a);
    }
    form.appendChild(p);
  }

  function settled(form, anyOk) {
    form.querySelectorAll("input[type=file]").forEach(function (input) { input.value = ""; });
    stored = stored || anyOk;
    if (running > 0 || !stored) return; /* another upload is still going: refresh after it */
    stored = false;
    refresh().then(function (ok) {
      if (document.body.contains(form)) note(form, ok ? TEXT.refreshed : TEXT.done, !ok);
    });
  }

  function enhance(form) {
    if (form.hasAttribute("data-upload-ready")) return;
    form.setAttribute("data-upload-ready", "");
    var zone = form.querySelector("[data-dropzone]");
    var submit = form.querySelector("[data-upload-submit]");
    if (submit) submit.hidden = true; /* files go as soon as they are chosen or dropped */
    form.querySelectorAll("input[type=file]").forEach(function (input) {
      input.addEventListener("change", function () {
        if (input.files.length) uploadAll(form, input.files).then(function (ok) { settled(form, ok); });
      });
    });
    if (!zone) return;
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (e) {
      if (e.dataTransfer && e.dataTransfer.files.length) {
        uploadAll(form, e.dataTransfer.files).then(function (ok) { settled(form, ok); });
      }
    });
  }

  function init() { document.querySelectorAll("form[data-upload]").forEach(enhance); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
