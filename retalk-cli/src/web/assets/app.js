// retalk show --web: the page. Every name and text goes in with
// textContent, never parsed as HTML: a message is shown exactly as
// written, markup included, and nothing in it ever runs.
"use strict";

const token = new URLSearchParams(location.search).get("t") || "";
const state = {
  me: "", myId: "", convs: [], sel: null, selName: "",
  shown: new Set(), lastDay: "", lastFrom: null, maxRow: 0, events: null,
};
const $ = (id) => document.getElementById(id);

async function api(path) {
  const r = await fetch(path, { headers: { "X-Retalk-Token": token }, cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

const palette = ["#2b8a6e", "#3b6fd1", "#a2509c", "#d0763a", "#c0474f", "#5c7c2e", "#7a5bd6", "#168a99"];
function colour(id) {
  let h = 2166136261;
  for (const c of String(id)) { h ^= c.codePointAt(0); h = Math.imul(h, 16777619); }
  return palette[(h >>> 0) % palette.length];
}
function initials(name) {
  const words = String(name).replace(/^~/, "").split(/\s+/).filter(Boolean);
  const first = (w) => Array.from(w)[0] || "";
  return ((first(words[0] || "?") + (words[1] ? first(words[1]) : "")).toUpperCase()) || "?";
}
function setAvatar(node, name, id) {
  node.textContent = initials(name);
  node.style.background = colour(id);
}

const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "short", year: "numeric", month: "short", day: "numeric" });
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
function dayOf(ts) { return dayFmt.format(new Date(ts * 1000)); }
function timeOf(ts) { return timeFmt.format(new Date(ts * 1000)); }
function whenShort(ts) {
  if (!ts) return "";
  const d = new Date(ts * 1000);
  return d.toDateString() === new Date().toDateString() ? timeOf(ts) : dayFmt.format(d);
}

function renderConvs() {
  const box = $("convs");
  box.replaceChildren();
  if (!state.convs.length) {
    box.appendChild(el("div", "none", "No saved conversations yet."));
    return;
  }
  for (const c of state.convs) {
    const room = c.kind === "room";
    const b = el("button", "conv" + (room ? " room" : "") + (c.id === state.sel ? " sel" : ""));
    b.type = "button";
    b.dataset.id = c.id;
    const av = el("div", "avatar");
    setAvatar(av, c.name, c.id);
    const who = el("div", "who");
    const top = el("div", "row");
    top.appendChild(el("span", "name", (room ? "# " : "") + c.name));
    top.appendChild(el("span", "when", whenShort(c.last_ts)));
    const bottom = el("div", "row");
    const who_ = c.last_direction === "out" ? "You: " : (room && c.last_name ? c.last_name + ": " : "");
    const preview = c.count ? who_ + c.last_text : "nothing saved yet";
    bottom.appendChild(el("span", "last", preview));
    bottom.appendChild(el("span", "count" + (c.count ? "" : " zero"), c.count));
    who.append(top, bottom);
    b.append(av, who);
    b.addEventListener("click", () => select(c.id, c.name, c));
    box.appendChild(b);
  }
}

async function refreshConvs() {
  const d = await api("/api/conversations");
  state.me = d.me; state.myId = d.my_id || "";
  state.convs = d.conversations.map((c) => ({ ...c, id: c.id || c.fingerprint }));
  $("me-name").textContent = d.me;
  setAvatar($("me-avatar"), d.me, state.myId || d.me);
  renderConvs();
  return d;
}

function addMessage(m, fresh) {
  if (state.shown.has(m.rowid)) return;
  state.shown.add(m.rowid);
  const t = $("thread");
  const empty = $("empty");
  if (empty) empty.remove();
  const stick = t.scrollHeight - t.scrollTop - t.clientHeight < 80;
  const day = dayOf(m.ts);
  if (day !== state.lastDay) {
    t.appendChild(el("div", "day", day));
    state.lastDay = day;
    state.lastFrom = null;
  }
  const mine = m.direction === "out";
  const from = mine ? "me" : (m.from || m.name);
  const b = el("div", "bubble " + (mine ? "out" : "in"));
  b.dataset.rowid = m.rowid;
  if (from !== state.lastFrom) {
    b.classList.add("first");
    if (!mine) {
      const n = el("div", "from", m.name);
      n.style.color = colour(m.from || m.name);
      b.appendChild(n);
    }
  }
  state.lastFrom = from;
  b.appendChild(el("span", "time", timeOf(m.ts)));
  b.appendChild(el("div", "text", m.text));
  if (fresh) b.classList.add("fresh");
  t.appendChild(b);
  if (stick || !fresh) t.scrollTop = t.scrollHeight;
}

async function select(id, name, conv) {
  const room = !!conv && conv.kind === "room";
  state.sel = id; state.selName = name;
  state.shown = new Set(); state.lastDay = ""; state.lastFrom = null;
  $("app").className = "thread-open";
  $("peer-name").textContent = (room ? "# " : "") + name;
  $("peer-id").textContent = room ? "room · you and " + conv.members + " member(s) · " + id : id;
  setAvatar($("peer-avatar"), name, id);
  const t = $("thread");
  t.replaceChildren();
  renderConvs();
  const d = await api("/api/messages?peer=" + encodeURIComponent(id) + "&after=0");
  if (state.sel !== id) return;
  for (const m of d.messages) addMessage(m, false);
  if (!d.messages.length) t.appendChild(el("div", "empty", "Nothing saved with " + name + " yet."));
}

let convTimer = null;
function refreshConvsSoon() {
  clearTimeout(convTimer);
  convTimer = setTimeout(() => refreshConvs().catch(showError), 150);
}

function listen(after) {
  const es = new EventSource("/api/events?t=" + encodeURIComponent(token) + "&after=" + after);
  state.events = es;
  es.onopen = () => $("live").classList.add("on");
  es.onerror = () => $("live").classList.remove("on");
  es.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    state.maxRow = Math.max(state.maxRow, m.rowid);
    if (m.peer === state.sel) addMessage(m, true);
    refreshConvsSoon();
  };
}

function showError(e) {
  const t = $("thread");
  t.replaceChildren(el("div", "empty", "Cannot reach the retalk web view (" + e.message + "). Is `retalk show --web` still running?"));
}

$("back").addEventListener("click", () => { $("app").className = "list-open"; });

refreshConvs().then((d) => {
  state.maxRow = d.last_rowid || 0;
  listen(state.maxRow);
  const first = state.convs.find((c) => c.count) || state.convs[0];
  if (first && window.matchMedia("(min-width: 721px)").matches) select(first.id, first.name, first);
}).catch(showError);
