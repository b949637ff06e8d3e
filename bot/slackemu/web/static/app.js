// accessbot sandbox page: fetches the workspace state after every change
// (server-sent events), and acts as the chosen person through /api/act.
// The HTML of messages, modals and panels is rendered by the server.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const ui = {
    as: sessionStorage.getItem("as") || "",
    conv: JSON.parse(sessionStorage.getItem("conv") || "{}"), // person → conversation
    last: {}, // region → last HTML set, to leave unchanged regions alone
    modalKey: "",
    fetching: false,
    again: false,
  };

  function setHTML(id, html) {
    if (ui.last[id] === html) return false;
    ui.last[id] = html;
    $(id).innerHTML = html;
    return true;
  }

  function toast(text, bad) {
    const t = $("toast");
    t.textContent = text;
    t.className = "toast show" + (bad ? " bad" : "");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.className = "toast"; }, 6000);
  }

  async function post(url, body) {
    const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    let j = {};
    try { j = await r.json(); } catch (e) { j = { error: "the sandbox did not answer (" + r.status + ")" }; }
    return j;
  }

  async function refresh() {
    if (ui.fetching) { ui.again = true; return; }
    ui.fetching = true;
    try {
      do {
        ui.again = false;
        const asked = ui.as, conv = ui.conv[ui.as] || "";
        const q = new URLSearchParams({ as: asked, conv: conv });
        const r = await fetch("/api/state?" + q, { cache: "no-store" });
        const st = r.ok ? await r.json() : null;
        // The person or conversation changed while this was in flight:
        // the answer is stale; ask again.
        if (ui.as !== asked || (ui.conv[ui.as] || "") !== conv) { ui.again = true; continue; }
        if (st) apply(st);
      } while (ui.again);
    } catch (e) {
      // The stream reconnects by itself; the next change refreshes.
    } finally {
      ui.fetching = false;
    }
  }

  function apply(st) {
    ui.as = st.as;
    sessionStorage.setItem("as", ui.as);
    document.body.dataset.as = st.as;
    const sel = $("person");
    const opts = st.people.map((p) => {
      let label = p.name + (p.note ? " — " + p.note : "") + (p.unread ? "  (" + p.unread + " unread)" : "");
      return [p.id, label];
    });
    const key = JSON.stringify(opts);
    if (ui.last.people !== key) {
      ui.last.people = key;
      sel.textContent = "";
      for (const [id, label] of opts) {
        const o = document.createElement("option");
        o.value = id;
        o.textContent = label;
        sel.appendChild(o);
      }
    }
    sel.value = st.as;
    setHTML("sidebar", st.sidebar);
    $("conv-title").textContent = st.conv_title;
    document.body.dataset.conv = st.conv_kind;
    const box = $("messages");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    let html = st.messages;
    if (st.conv_kind === "home" && !st.home_opened) html = '<p class="empty">Opening App Home…</p>';
    if (setHTML("messages", html) && (atBottom || ui.lastConv !== st.conv)) box.scrollTop = box.scrollHeight;
    ui.lastConv = st.conv;
    $("composer").hidden = !st.composer;
    applyModal(st.modal);
    $("clock-now").textContent = st.clock.now;
    $("clock-due").textContent = st.clock.has_next ? "Next due: " + st.clock.next + " — " + st.clock.next_at + " (" + st.clock.next_in + ")" : "Nothing scheduled.";
    $("clock-next").disabled = !st.clock.has_next;
    setHTML("connectors", st.connectors);
    setHTML("audit", st.audit);
    $("conn-count").textContent = st.counts.connector ? "(" + st.counts.connector + ")" : "";
    $("audit-count").textContent = "(" + st.counts.audit + ")";
  }

  // Values typed in the open modal, by block and action: kept across the
  // bot's views.update, as Slack keeps them when the ids are unchanged.
  function modalValues(root) {
    const out = {};
    if (!root) return out;
    root.querySelectorAll("[data-input]").forEach((el) => {
      const b = el.dataset.blockId, a = el.dataset.actionId;
      let v = {};
      if (el.tagName === "SELECT" && el.multiple) v.SelectedOptions = Array.from(el.selectedOptions).map((o) => o.value).filter((x) => x);
      else if (el.tagName === "SELECT") v.SelectedOption = el.value;
      else if (el.tagName === "FIELDSET") {
        const checked = Array.from(el.querySelectorAll("input:checked")).map((i) => i.value);
        if (el.querySelector("input[type=radio]")) v.SelectedOption = checked[0] || "";
        else v.SelectedOptions = checked;
      } else v.Value = el.value;
      (out[b] = out[b] || {})[a] = v;
    });
    return out;
  }

  function restoreValues(root, vals) {
    root.querySelectorAll("[data-input]").forEach((el) => {
      const v = (vals[el.dataset.blockId] || {})[el.dataset.actionId];
      if (!v) return;
      if (el.tagName === "SELECT" && el.multiple) Array.from(el.options).forEach((o) => { o.selected = (v.SelectedOptions || []).includes(o.value); });
      else if (el.tagName === "SELECT") { if (v.SelectedOption && Array.from(el.options).some((o) => o.value === v.SelectedOption)) el.value = v.SelectedOption; }
      else if (el.tagName === "FIELDSET") el.querySelectorAll("input").forEach((i) => { i.checked = (v.SelectedOptions || [v.SelectedOption]).includes(i.value); });
      else if (v.Value !== undefined) el.value = v.Value;
    });
  }

  function applyModal(m) {
    const root = $("modal-root");
    if (!m) {
      if (ui.modalKey) { root.innerHTML = ""; ui.modalKey = ""; document.body.classList.remove("has-modal"); if (ui.beforeModal) ui.beforeModal.focus(); }
      return;
    }
    const key = m.id + "|" + m.hash;
    if (key === ui.modalKey) return;
    const old = root.querySelector(".modal");
    const sameView = old && old.dataset.viewId === m.id;
    const vals = sameView ? modalValues(old) : {};
    const focused = sameView && document.activeElement ? document.activeElement.id : "";
    if (!ui.modalKey) ui.beforeModal = document.activeElement;
    root.innerHTML = '<div class="overlay">' + m.html + "</div>";
    ui.modalKey = key;
    document.body.classList.add("has-modal");
    const modal = root.querySelector(".modal");
    restoreValues(modal, vals);
    const err = modal.querySelector("[aria-invalid=true]");
    const again = focused && document.getElementById(focused);
    (err || again || modal.querySelector("[data-input], button[data-act=submit]") || modal).focus();
  }

  function currentModal() { return $("modal-root").querySelector(".modal"); }

  function showFieldErrors(modal, errs) {
    for (const [block, text] of Object.entries(errs)) {
      const wrap = modal.querySelector('.bk-input[data-block-id="' + CSS.escape(block) + '"]');
      if (!wrap) continue;
      wrap.classList.add("bk-invalid");
      const ctl = wrap.querySelector("[data-input]");
      let e = wrap.querySelector(".bk-field-error");
      if (!e) {
        e = document.createElement("div");
        e.className = "bk-field-error";
        e.setAttribute("role", "alert");
        e.id = (ctl ? ctl.id : block) + "-error";
        wrap.insertBefore(e, ctl ? ctl.nextSibling : null);
      }
      e.textContent = text;
      if (ctl) { ctl.setAttribute("aria-invalid", "true"); ctl.setAttribute("aria-describedby", e.id); }
    }
    const first = modal.querySelector("[aria-invalid=true]");
    if (first) first.focus();
  }

  async function act(body) {
    body.as = ui.as;
    const j = await post("/api/act", body);
    if (j.field_errors && Object.keys(j.field_errors).length && currentModal()) showFieldErrors(currentModal(), j.field_errors);
    else if (j.error) toast(j.error, true);
    refresh();
    return j;
  }

  function askConfirm(el) {
    return new Promise((resolve) => {
      const d = $("confirm");
      $("confirm-title").textContent = el.dataset.title || "Are you sure?";
      $("confirm-text").innerHTML = el.innerHTML; // rendered (escaped) by the server
      $("confirm-ok").textContent = el.dataset.confirm || "Yes";
      $("confirm-ok").className = "bk-button " + (el.dataset.style === "danger" ? "bk-danger" : "bk-primary");
      $("confirm-deny").textContent = el.dataset.deny || "Cancel";
      d.returnValue = "";
      d.onclose = () => resolve(d.returnValue === "ok");
      d.showModal();
      $("confirm-ok").focus();
    });
  }

  async function clickButton(btn) {
    const conf = btn.nextElementSibling && btn.nextElementSibling.classList.contains("bk-confirm") ? btn.nextElementSibling : null;
    if (conf && !(await askConfirm(conf))) return;
    const view = btn.closest("[data-view-id]");
    const msg = btn.closest("article.msg");
    const body = { kind: "button", action_id: btn.dataset.actionId, block_id: btn.dataset.blockId, value: btn.dataset.value };
    if (view) body.view_id = view.dataset.viewId;
    else if (msg) { body.channel = msg.dataset.channel; body.ts = msg.dataset.ts; }
    btn.disabled = true;
    try { await act(body); } finally { btn.disabled = false; }
  }

  document.addEventListener("click", (ev) => {
    const t = ev.target.closest("button, a");
    if (!t) return;
    if (t.dataset.act === "button" && t.tagName === "BUTTON") { ev.preventDefault(); clickButton(t); return; }
    if (t.dataset.act === "close") { ev.preventDefault(); const m = currentModal(); if (m) act({ kind: "close", view_id: m.dataset.viewId }); return; }
    if (t.dataset.conv) { ev.preventDefault(); openConv(t.dataset.conv, t.dataset.kind); return; }
    if (t.dataset.advance) { ev.preventDefault(); advance(t.dataset.advance); }
  });

  document.addEventListener("change", (ev) => {
    const el = ev.target;
    if (el.id === "person") { switchPerson(el.value); return; }
    if (el.dataset.act !== "select") return;
    const view = el.closest("[data-view-id]");
    const inModal = el.closest(".modal");
    if (inModal && !("dispatch" in el.dataset)) return; // kept in the form until submit, as in Slack
    const body = { kind: "select", block_id: el.dataset.blockId, action_id: el.dataset.actionId, value: el.value };
    if (view) body.view_id = view.dataset.viewId;
    act(body);
  });

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.id === "composer") { ev.preventDefault(); sendCommand(); return; }
    if (form.classList.contains("modal-form")) { ev.preventDefault(); submitModal(); }
  });

  async function submitModal() {
    const m = currentModal();
    if (!m) return;
    // Like the Slack client: a required field left empty is flagged here
    // and nothing is sent.
    const missing = {};
    m.querySelectorAll("[data-input][aria-required=true]").forEach((el) => {
      // Empty, not blank: the Slack client lets "   " through and the app
      // answers with response_action errors.
      const empty = el.tagName === "FIELDSET" ? !el.querySelector("input:checked") : !el.value;
      if (empty) missing[el.dataset.blockId] = "Please complete this required field.";
    });
    if (Object.keys(missing).length) { showFieldErrors(m, missing); return; }
    const btn = m.querySelector("[data-act=submit]");
    if (btn) btn.disabled = true;
    try { await act({ kind: "submit", view_id: m.dataset.viewId, values: modalValues(m) }); } finally { if (btn) btn.disabled = false; }
  }

  async function sendCommand() {
    const input = $("composer-input");
    const text = input.value.trim();
    $("composer-error").textContent = "";
    if (!text) return;
    input.disabled = true;
    try {
      const j = await post("/api/act", { as: ui.as, kind: "command", text: text });
      if (j.error) $("composer-error").textContent = j.error;
      else input.value = "";
    } finally {
      input.disabled = false;
      input.focus();
      refresh();
    }
  }

  async function advance(what) {
    const buttons = document.querySelectorAll("[data-advance]");
    buttons.forEach((b) => { b.disabled = true; });
    $("clock-error").textContent = "";
    try {
      const j = await post("/api/clock", { advance: what });
      if (j.error) $("clock-error").textContent = j.error;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      refresh();
    }
  }

  function saveConv() { sessionStorage.setItem("conv", JSON.stringify(ui.conv)); }

  function switchPerson(id) {
    ui.as = id;
    sessionStorage.setItem("as", id);
    refresh();
  }

  function openConv(id, kind) {
    ui.conv[ui.as] = id;
    saveConv();
    if (kind === "home") post("/api/act", { as: ui.as, kind: "open_home" }).then(refresh);
    refresh();
    if (kind === "dm") $("composer-input").focus();
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && currentModal() && !$("confirm").open) { ev.preventDefault(); act({ kind: "close", view_id: currentModal().dataset.viewId }); return; }
    // Alt+↑ / Alt+↓: the previous / next person.
    if (ev.altKey && (ev.key === "ArrowUp" || ev.key === "ArrowDown")) {
      const sel = $("person");
      const i = sel.selectedIndex + (ev.key === "ArrowUp" ? -1 : 1);
      if (i >= 0 && i < sel.options.length) { ev.preventDefault(); switchPerson(sel.options[i].value); }
    }
    // Keep Tab inside an open modal.
    if (ev.key === "Tab" && currentModal() && !$("confirm").open) {
      const f = Array.from(currentModal().querySelectorAll("button, select, input, textarea, [tabindex]:not([tabindex='-1'])")).filter((e) => !e.disabled);
      if (!f.length) return;
      if (ev.shiftKey && document.activeElement === f[0]) { ev.preventDefault(); f[f.length - 1].focus(); }
      else if (!ev.shiftKey && document.activeElement === f[f.length - 1]) { ev.preventDefault(); f[0].focus(); }
    }
  });

  const es = new EventSource("/api/events");
  es.addEventListener("change", refresh);
  refresh();
})();
