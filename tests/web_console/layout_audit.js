// The layout audit of tests/web_console/test_visual_browser.py, run in the page: returns the
// problems a person would see. Labels (short texts: the top bar's, buttons, table heads, form
// labels, navigation links, definition terms) must sit on one line; nothing may overflow its
// container or make the page wider than the window; no text may be an untranslated catalogue key.
(areas) => {
  const problems = [];
  const visible = (el) => {
    const s = getComputedStyle(el);
    if (s.display === "none" || s.visibility === "hidden") return false;
    if (el.closest(".visually-hidden")) return false;  // for screen readers only
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const name = (el) => {
    let n = el.tagName.toLowerCase();
    if (el.id) n += "#" + el.id;
    else if (el.className && typeof el.className === "string") n += "." + el.className.trim().split(/\s+/).join(".");
    const f = el.getAttribute("data-field");
    if (f) n += "[data-field=" + f + "]";
    return n;
  };
  const lines = (el) => {
    const tops = new Set();
    for (const node of el.childNodes) {
      if (node.nodeType !== Node.TEXT_NODE || !node.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const r of range.getClientRects()) if (r.width > 0) tops.add(Math.round(r.top));
    }
    return tops.size;
  };
  const LABELS = ".topbar *, button, th, label, dt, nav a, .admin-nav a, .conn, .lang-switch";
  for (const el of document.querySelectorAll(LABELS)) {
    if (!visible(el)) continue;
    const text = Array.from(el.childNodes).filter((n) => n.nodeType === Node.TEXT_NODE)
      .map((n) => n.textContent).join("").trim();
    if (!text || text.length > 40) continue;
    if (lines(el) > 1) problems.push("wraps: " + name(el) + " " + JSON.stringify(text));
  }
  // Clipped: a top-bar text cut off without an ellipsis and a tooltip saying it whole.
  for (const el of document.querySelectorAll(".topbar *")) {
    if (!visible(el) || !el.textContent.trim()) continue;
    const s = getComputedStyle(el);
    if (s.overflowX === "visible" || el.scrollWidth <= el.clientWidth + 1) continue;
    if (s.textOverflow === "ellipsis" && el.closest("[title]")) continue;
    problems.push("clipped: " + name(el) + " " + JSON.stringify(el.textContent.trim().slice(0, 40)));
  }
  // Overflow: the page wider than the window, or an element past its container's edge.
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    problems.push("page wider than the window: " + document.documentElement.scrollWidth + " > " + window.innerWidth);
  }
  for (const area of areas) {
    for (const el of document.querySelectorAll(area + " *")) {
      if (!visible(el)) continue;
      const parent = el.parentElement;
      const ps = getComputedStyle(parent);
      if (ps.overflowX !== "visible" || ps.display === "contents") continue;
      const s = getComputedStyle(el);
      if (s.position === "absolute" || s.position === "fixed") continue;
      const r = el.getBoundingClientRect();
      const p = parent.getBoundingClientRect();
      if (r.right > p.right + 1.5 || r.left < p.left - 1.5) {
        problems.push("overflows " + name(parent) + ": " + name(el) + " (" + Math.round(r.left) + "–" +
          Math.round(r.right) + " in " + Math.round(p.left) + "–" + Math.round(p.right) + ")");
      }
      if (el.scrollWidth > el.clientWidth + 1 && s.overflowX === "visible" && el.clientWidth > 0 &&
          !["TABLE", "TBODY", "THEAD", "TR"].includes(el.tagName)) {
        problems.push("content wider than " + name(el) + ": " + el.scrollWidth + " > " + el.clientWidth);
      }
    }
  }
  // An untranslated key: a word of a text (or of a tooltip, a placeholder, a label) that is a
  // catalogue key, dotted ("stats.offered") or as the page scripts ask for it ("queue_waiting").
  const KEY = /^(js\.)?[a-z][a-z0-9]*(_[a-z0-9]+)*(\.[a-z0-9_]+)+$|^[a-z][a-z0-9]*(_[a-z0-9]+)+$/;
  const keys = (text) => text.split(/[\s·:：,，()（）]+/).filter((w) => KEY.test(w));
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    // A textarea holds text a person edits (a message template may name an audit action), not labels.
    if (node.parentElement.closest("script, style, template, textarea")) continue;
    for (const k of keys(node.textContent)) {
      problems.push("untranslated: " + JSON.stringify(k) + " in " + name(node.parentElement));
    }
  }
  for (const el of document.querySelectorAll("[title], [placeholder], [aria-label]")) {
    for (const attr of ["title", "placeholder", "aria-label"]) {
      for (const k of keys(el.getAttribute(attr) || "")) {
        problems.push("untranslated " + attr + ": " + JSON.stringify(k) + " on " + name(el));
      }
    }
  }
  return problems;
}
