// heygem-daemon status page: keeps <main> current without reloading the page.
// Written by the daemon beside status.js; nothing is fetched from anywhere else.
//
// Every refresh_s seconds a fresh <script src="status.js?..."> is added: browsers
// refuse fetch() of file:// pages, but load scripts beside them, and a static web
// server serves the same file.  status.js sets window.heygemStatus = {updated_at,
// title, html}; the new HTML is patched into <main> element by element, matched by
// data-key, so a playing video, the scroll position and open details survive.
(function () {
  "use strict";
  var body = document.body;
  var refreshMs = Math.max(1000, (parseFloat(body.getAttribute("data-refresh")) || 5) * 1000);
  var globalName = body.getAttribute("data-global") || "heygemStatus";
  var main = document.getElementById("status");
  var live = document.getElementById("live");
  // the HTML last patched in (updated_at has whole seconds: two writes can share one)
  var lastHtml = null;
  // attributes people change by using the page, which an update must not undo
  var KEEP = {open: true};

  function keyOf(node) {
    return node.nodeType === 1 ? node.getAttribute("data-key") : null;
  }

  function patchChildren(old, fresh) {
    var keyed = {};
    for (var c = old.firstChild; c; c = c.nextSibling) {
      var k = keyOf(c);
      if (k !== null) keyed[k] = c;
    }
    var cursor = old.firstChild;
    var incoming = Array.prototype.slice.call(fresh.childNodes);
    for (var i = 0; i < incoming.length; i++) {
      var node = incoming[i], key = keyOf(node), match = null;
      if (key !== null) {
        match = Object.prototype.hasOwnProperty.call(keyed, key) ? keyed[key] : null;
        if (match) delete keyed[key];
      } else if (cursor && keyOf(cursor) === null && cursor.nodeName === node.nodeName) {
        match = cursor;
      }
      if (!match || match.nodeName !== node.nodeName) {
        old.insertBefore(node, cursor);
        continue;
      }
      if (match === cursor) cursor = cursor.nextSibling;
      else old.insertBefore(match, cursor);  // moved within one task: a playing video goes on
      patchNode(match, node);
    }
    while (cursor) {
      var next = cursor.nextSibling;
      old.removeChild(cursor);
      cursor = next;
    }
  }

  function patchNode(old, fresh) {
    if (old.nodeType !== 1) {
      if (old.nodeValue !== fresh.nodeValue) old.nodeValue = fresh.nodeValue;
      return;
    }
    if (old.isEqualNode(fresh)) return;
    var i, attr;
    for (i = old.attributes.length - 1; i >= 0; i--) {
      attr = old.attributes[i].name;
      if (!fresh.hasAttribute(attr) && !KEEP[attr]) old.removeAttribute(attr);
    }
    for (i = 0; i < fresh.attributes.length; i++) {
      attr = fresh.attributes[i];
      if (old.getAttribute(attr.name) !== attr.value) old.setAttribute(attr.name, attr.value);
    }
    if (old.nodeName === "PROGRESS" && fresh.hasAttribute("value")) old.value = Number(fresh.getAttribute("value"));
    patchChildren(old, fresh);
  }

  // the same steps as heygem_daemon/status/times.py relative()
  function relative(iso, now) {
    var s = (now - Date.parse(iso)) / 1000;
    if (!(s >= 10)) return "just now";
    if (s < 60) return Math.floor(s) + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    var days = Math.floor(s / 86400);
    return days === 1 ? "yesterday" : days + " days ago";
  }

  function refreshAges() {
    var now = Date.now();
    var ages = main.querySelectorAll("[data-since]");
    for (var i = 0; i < ages.length; i++) {
      var text = relative(ages[i].getAttribute("data-since"), now);
      if (ages[i].textContent !== text) ages[i].textContent = text;
    }
  }

  function say(text) {
    if (live.textContent !== text) live.textContent = text;
    live.hidden = !text;
  }

  function apply(status) {
    if (!status || typeof status.html !== "string") return;
    if (status.html !== lastHtml) {
      var fresh = document.createElement("template");
      fresh.innerHTML = status.html;
      patchChildren(main, fresh.content);
      lastHtml = status.html;
      if (status.title) document.title = status.title;
    }
    document.documentElement.setAttribute("data-updated", status.updated_at);
    // the daemon rewrites its status every few seconds while it runs
    var quietS = (Date.now() - Date.parse(status.updated_at)) / 1000;
    var limit = Math.max(120, 6 * refreshMs / 1000);
    say(quietS > limit ? "Not updated for " + relative(status.updated_at, Date.now()).replace(" ago", "") +
        ": the daemon may have stopped." : "");
    refreshAges();
  }

  function poll() {
    if (document.hidden) return later();
    var tag = document.createElement("script");
    tag.src = "status.js?t=" + Date.now();
    tag.onload = function () {
      tag.remove();
      apply(window[globalName]);
      document.documentElement.setAttribute("data-polls",
        String(1 + Number(document.documentElement.getAttribute("data-polls") || 0)));
      later();
    };
    tag.onerror = function () {
      tag.remove();
      say("Cannot read status.js next to this page (is the share reachable?); trying again.");
      later();
    };
    document.head.appendChild(tag);
  }

  function later() {
    window.setTimeout(poll, refreshMs);
  }

  document.documentElement.setAttribute("data-live", "yes");
  say("");
  refreshAges();
  later();
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refreshAges();
  });
})();
