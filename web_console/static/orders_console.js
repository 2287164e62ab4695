// Seat console, dispatch part: the resident's household, elderly profile, service archive and
// earlier orders in the pop, and the order form pre-filled from the call. Listens to the
// "cc:pop" events console.js raises. Call data is untrusted: textContent only, never HTML.
(function () {
  "use strict";

  var panel = document.getElementById("order-panel");
  var form = document.getElementById("order-form");
  if (!panel || !form) return;

  var t = window.ccI18n.t; // i18n.js
  var str = window.ccI18n.str;
  // A status or type label; a value the catalogue does not know is shown as it is.
  function label(prefix, v) {
    var key = prefix + "." + str(v);
    return window.ccI18n.has(key) ? t(key) : str(v);
  }
  function el(tag, text, cls) {
    var n = document.createElement(tag);
    if (text !== undefined && text !== null) n.textContent = String(text);
    if (cls) n.className = cls;
    return n;
  }
  function fieldOf(name) {
    return form.querySelector('[data-field="' + name + '"]');
  }
  var api = window.cc.api; // cc.js

  // ---- the form's options, loaded once ----
  var options = null;
  var optionsReady = api("GET", "/api/dispatch/options").then(function (r) {
    if (r.status !== 200) return null;
    options = r.data;
    var sel = form.elements.order_type;
    options.types.forEach(function (ty) {
      var o = el("option", label("type", ty));
      o.value = ty;
      sel.appendChild(o);
    });
    sel.value = "求助";
    var cat = form.elements.category_id;
    var blank = el("option", t("order.choose"));
    blank.value = "";
    cat.appendChild(blank);
    options.categories.forEach(function (c) {
      var o = el("option", new Array(Number(c.depth) + 1).join("\u3000") + c.name);
      o.value = String(c.id);
      o.dataset.code = str(c.code);
      o.dataset.name = str(c.name);
      cat.appendChild(o);
    });
    var com = form.elements.community_id;
    var blank2 = el("option", t("order.community"));
    blank2.value = "";
    com.appendChild(blank2);
    options.communities.forEach(function (c) {
      var o = el("option", c.name);
      o.value = String(c.id);
      com.appendChild(o);
    });
    var out = form.elements.outlet_id;
    var none = el("option", t("order.no_outlet"));
    none.value = "";
    out.appendChild(none);
    options.outlets.forEach(function (x) {
      var o = el("option", x.name);
      o.value = String(x.id);
      out.appendChild(o);
    });
    return options;
  });

  document.getElementById("order-title").textContent = t("order.title");
  document.getElementById("order-save").textContent = t("order.save");
  form.elements.answer.placeholder = t("order.answer");
  form.elements.answer.setAttribute("aria-label", t("order.answer"));

  var repeatNumber = "";

  function suggest() {
    var q = [];
    if (form.elements.category_id.value) q.push("category_id=" + encodeURIComponent(form.elements.category_id.value));
    if (form.elements.community_id.value) q.push("community_id=" + encodeURIComponent(form.elements.community_id.value));
    if (form.elements.resident_id.value) q.push("resident_id=" + encodeURIComponent(form.elements.resident_id.value));
    if (form.elements.address.value) q.push("address=" + encodeURIComponent(form.elements.address.value));
    return api("GET", "/api/orders/suggest?" + q.join("&")).then(function (r) {
      if (r.status !== 200) return;
      var s = r.data.outlet;
      fieldOf("order-suggestion").textContent = s ? t("order.suggested", { name: s.name }) : t("order.no_suggestion");
      // The suggestion is pre-selected; the seat may choose another outlet.
      if (s && !form.dataset.outletTouched) form.elements.outlet_id.value = String(s.id);
      var rep = r.data.repeat;
      repeatNumber = rep ? str(rep.number) : "";
      var row = form.querySelector('[data-row="order-repeat"]');
      row.hidden = !rep;
      if (rep) fieldOf("order-repeat").textContent = t("order.repeat", { number: rep.number, status: label("status", rep.status) }) + " · " + t("order.merge");
      else form.elements.merge.checked = false;
    });
  }

  ["category_id", "community_id"].forEach(function (name) {
    form.elements[name].addEventListener("change", suggest);
  });
  form.elements.address.addEventListener("change", suggest);
  form.elements.outlet_id.addEventListener("change", function () {
    form.dataset.outletTouched = "1";
  });

  function categoryFor(ivr) {
    if (!ivr || !options) return "";
    var wanted = String(ivr);
    var found = "";
    Array.prototype.forEach.call(form.elements.category_id.options, function (o) {
      if (!found && o.value && (o.dataset.code === wanted || o.dataset.name === wanted || o.value === wanted)) found = o.value;
    });
    return found;
  }

  // ---- a new call: reset and pre-fill the form ----
  function prefill(msg) {
    var linkedid = str(msg.linkedid);
    if (form.dataset.linkedid === linkedid) {
      // The same call's pop again (profile arrived): fill what the seat has not typed yet.
      if (msg.resident && !form.elements.resident_id.value) fillResident(msg.resident);
      return;
    }
    form.reset();
    delete form.dataset.outletTouched;
    form.dataset.linkedid = linkedid;
    form.elements.resident_id.value = "";
    fieldOf("order-message").textContent = "";
    fieldOf("order-message").removeAttribute("data-number");
    fieldOf("order-linked").textContent = t("order.linked", { linkedid: linkedid });
    form.elements.caller_phone.value = str(msg.caller);
    form.elements.caller_name.value = str(msg.caller_name).slice(0, 64);
    form.elements.order_type.value = "求助";
    if (msg.summary_12345) form.elements.summary.value = str(msg.summary_12345).slice(0, 1000);
    if (msg.resident) fillResident(msg.resident);
    var cat = categoryFor(msg.ivr_category);
    if (cat) form.elements.category_id.value = cat;
    panel.hidden = false;
    suggest();
  }

  function fillResident(r) {
    form.elements.resident_id.value = r.id === undefined || r.id === null ? "" : String(r.id);
    if (r.community_id) form.elements.community_id.value = String(r.community_id);
    if (r.address && !form.elements.address.value) form.elements.address.value = str(r.address).slice(0, 255);
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = {
      linkedid: form.dataset.linkedid || "",
      resident_id: form.elements.resident_id.value ? Number(form.elements.resident_id.value) : null,
      caller_phone: form.elements.caller_phone.value,
      caller_name: form.elements.caller_name.value,
      order_type: form.elements.order_type.value,
      category_id: form.elements.category_id.value ? Number(form.elements.category_id.value) : null,
      urgency: form.elements.urgent.checked ? "urgent" : "normal",
      community_id: form.elements.community_id.value ? Number(form.elements.community_id.value) : null,
      address: form.elements.address.value,
      summary: form.elements.summary.value,
      outlet_id: form.elements.outlet_id.value ? Number(form.elements.outlet_id.value) : null,
      answer: form.elements.answer.value,
      merge_into: form.elements.merge.checked ? repeatNumber : ""
    };
    var msgEl = fieldOf("order-message");
    var button = document.getElementById("order-save");
    button.disabled = true;
    api("POST", "/api/orders", body).then(function (r) {
      if (r.status === 201) {
        msgEl.textContent = t("order.saved", { number: r.data.number, status: label("status", r.data.status) }) + " ";
        var open = el("a", t("order.open"));
        open.href = "/orders/" + encodeURIComponent(r.data.id);
        open.target = "_blank";
        open.rel = "noopener";
        msgEl.appendChild(open);
        msgEl.dataset.number = str(r.data.number);
      } else {
        msgEl.textContent = t("order.failed", { error: str(r.data && (r.data.message || r.data.error)) || String(r.status) });
      }
    }, function () {
      msgEl.textContent = t("order.failed", { error: "network" });
    }).then(function () {
      button.disabled = false;
    });
  });

  // ---- the pop's dispatch block: household, elderly profile, archive, earlier orders ----
  function section(title, items) {
    var box = el("div");
    box.appendChild(el("div", title, "label"));
    var ul = el("ul");
    items.forEach(function (text) { ul.appendChild(el("li", text)); });
    box.appendChild(ul);
    return box;
  }

  var FINAL = ["已归档", "已并单"];

  function fillDispatch(pop, d, linkedid, residentId) {
    var block = pop.querySelector('[data-block="dispatch"]');
    if (!block) return;
    while (block.firstChild) block.removeChild(block.firstChild);
    if (!d || typeof d !== "object") return;
    if (residentId) {
      // The whole file (household, elderly profile, archive) opens beside the console.
      var more = el("a", t("pop.file"));
      more.href = "/residents/" + encodeURIComponent(residentId);
      more.target = "_blank";
      more.rel = "noopener";
      more.dataset.action = "resident-file";
      block.appendChild(more);
    }
    var household = Array.isArray(d.household) ? d.household : [];
    if (household.length) {
      block.appendChild(section(t("pop.household"), household.map(function (m) {
        return [str(m.name), str(m.relation), str(m.phone)].filter(Boolean).join(" · ");
      })));
    }
    if (d.elderly && typeof d.elderly === "object") {
      var e = d.elderly;
      var lines = [];
      if (e.health_notes) lines.push(t("pop.health") + "：" + str(e.health_notes));
      if (e.caregiver) lines.push(t("pop.caregiver") + "：" + [str(e.caregiver), str(e.caregiver_phone)].filter(Boolean).join(" "));
      if (e.emergency_phone) lines.push(str(e.emergency_phone));
      if (lines.length) block.appendChild(section(t("pop.elderly"), lines));
    }
    var archive = Array.isArray(d.archive) ? d.archive : [];
    if (archive.length) {
      block.appendChild(section(t("pop.archive"), archive.map(function (a) {
        return [str(a.at), str(a.service), str(a.outlet), str(a.outcome)].filter(Boolean).join(" · ");
      })));
    }
    var orders = Array.isArray(d.orders) ? d.orders : [];
    if (orders.length) {
      var box = section(t("pop.orders"), []);
      var ul = box.querySelector("ul");
      orders.forEach(function (o) {
        var li = el("li", [str(o.number), label("type", o.type), label("status", o.status), str(o.created_at),
          str(o.summary)].filter(Boolean).join(" · "));
        li.dataset.number = str(o.number);
        if (linkedid && FINAL.indexOf(str(o.status)) < 0) {
          // The resident rings again about an open order: this call joins the order's calls.
          var b = el("button", t("order.link_call"));
          b.type = "button";
          b.dataset.action = "link-call";
          b.addEventListener("click", function () {
            b.disabled = true;
            api("POST", "/api/orders/" + Number(o.id) + "/calls", { linkedid: linkedid }).then(function (r) {
              b.textContent = r.status === 200 ? t("order.call_linked") : t("order.failed", { error: str(r.data && (r.data.message || r.data.error)) });
            });
          });
          li.appendChild(document.createTextNode(" "));
          li.appendChild(b);
        }
        ul.appendChild(li);
      });
      block.appendChild(box);
    }
    block.dataset.filled = "1";
  }

  document.addEventListener("cc:pop", function (ev) {
    var msg = ev.detail || {};
    var pop = document.getElementById("pop");
    var rid = msg.resident && typeof msg.resident === "object" ? Number(msg.resident.id) || 0 : 0;
    if (pop) fillDispatch(pop, msg.dispatch, str(msg.linkedid), rid);
    optionsReady.then(function () { prefill(msg); });
  });
})();
