/* The upload widget: drag and drop, one request per file, a progress bar and a result per file.
 *
 * Enhances <form data-upload> (portal/documents/templates/documents/_upload.html). Without
 * this file the form still posts all chosen files at once and the server answers with a page.
 * Each file goes in its own XHR so that each has its own progress bar and its own answer
 * (stored / already there / refused and why); a refused file never stops the others.
 */
(function () {
  "use strict";

  var vi = (document.documentElement.lang || "").toLowerCase().indexOf("vi") === 0;
  var TEXT = vi ? {
    waiting: "Đang chờ", sending: "Đang tải lên", checking: "Đang kiểm tra và mã hoá",
    tooBig: "Tệp quá lớn: tối đa ", failed: "Không tải lên được. Kiểm tra kết nối rồi thử lại.",
    open: "Mở", done: "Xong. Tải lại trang để xem danh sách.", reload: "Tải lại"
  } : {
    waiting: "Waiting", sending: "Uploading", checking: "Checking and encrypting",
    tooBig: "Too large: files may be at most ", failed: "The upload failed. Check your connection and try again.",
    open: "Open", done: "Done. Reload the page to see the list.", reload: "Reload"
  };

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

  function send(form, file, item) {
    return new Promise(function (resolve) {
      var limit = parseInt(form.getAttribute("data-limit"), 10);
      if (limit && file.size > limit) {
        finish(item, false, TEXT.tooBig + form.getAttribute("data-limit-text"));
        return resolve(false);
      }
      var body = new FormData();
      fieldsOf(form).forEach(function (pair) { body.append(pair[0], pair[1]); });
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
    var next = 0, running = 0, anyOk = false;
    return new Promise(function (resolve) {
      function pump() {
        if (next >= items.length && running === 0) return resolve(anyOk);
        while (running < 2 && next < items.length) {
          var pair = items[next++];
          running++;
          send(form, pair[0], pair[1]).then(function (ok) { anyOk = anyOk || ok; running--; pump(); });
        }
      }
      pump();
    });
  }

  function done(form, anyOk) {
    form.querySelectorAll("input[type=file]").forEach(function (input) { input.value = ""; });
    if (!anyOk || form.querySelector("[data-upload-done]")) return;
    var p = document.createElement("p");
    p.setAttribute("data-upload-done", "");
    p.className = "hint";
    p.textContent = TEXT.done + " ";
    var a = document.createElement("a");
    a.href = window.location.href; a.textContent = TEXT.reload;
    p.appendChild(a);
    form.appendChild(p);
  }

  function enhance(form) {
    var zone = form.querySelector("[data-dropzone]");
    var submit = form.querySelector("[data-upload-submit]");
    if (submit) submit.hidden = true; /* files go as soon as they are chosen or dropped */
    form.querySelectorAll("input[type=file]").forEach(function (input) {
      input.addEventListener("change", function () {
        if (input.files.length) uploadAll(form, input.files).then(function (ok) { done(form, ok); });
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
        uploadAll(form, e.dataTransfer.files).then(function (ok) { done(form, ok); });
      }
    });
  }

  function init() { document.querySelectorAll("form[data-upload]").forEach(enhance); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
