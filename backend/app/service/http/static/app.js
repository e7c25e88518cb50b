/* Reelpick: the service's own web page. Plain JavaScript, no build step, no network beyond this origin.
 *
 * Views are hash routes (#/for-you, #/discover, #/popular?genre=Drama, #/item/42, #/dashboard), each a
 * function that renders into <main>. Every API call goes through api(), which turns failures into
 * readable messages (never a stack trace) and tells the status indicator when the service is down.
 */
(function () {
  "use strict";

  const REQUEST_TIMEOUT_MS = 8000;
  const READY_POLL_MS = 15000;
  const READY_POLL_DOWN_MS = 4000;
  const LIST_K = 12;
  const DASHBOARD_REFRESH_MS = 30000;
  const PLATFORM = "web";
  const STORE_USER = "reelpick.user";
  const STORE_VISITOR = "reelpick.visitor";
  const STORE_PICKS = "reelpick.discover";
  const STORE_DISLIKED = "reelpick.disliked."; // earlier versions of the page: moved into STORE_REACTIONS
  const STORE_REACTIONS = "reelpick.reactions.";
  const STORE_DETAILS = "reelpick.details";
  const STORE_KEY = "reelpick.apiKey"; // the service key, when the service asks for one (X-API-Key)

  const view = document.getElementById("view");
  const statusEl = document.getElementById("api-status");
  const statusText = statusEl.querySelector(".api-status-text");

  // ------------------------------------------------------------------ small helpers

  /** Build an element: h("a", {href: "#", class: "x", onclick: fn}, "text", child, [more]). No innerHTML. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
      else if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    appendAll(el, children);
    return el;
  }

  function appendAll(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) el.setAttribute(key, String(value));
    }
    appendAll(el, children);
    return el;
  }

  function storageGet(key, fallback) {
    try {
      const raw = localStorage.getItem(key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (_) {
      return fallback;
    }
  }

  function storageSet(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch (_) { /* private mode: not remembered */ }
  }

  function visitorId() {
    let id = storageGet(STORE_VISITOR, null);
    if (!id) {
      const bytes = new Uint8Array(6);
      crypto.getRandomValues(bytes);
      id = "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      storageSet(STORE_VISITOR, id);
    }
    return id;
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  /** "A", "A and B", "A, B and C" (``word``: "and" / "or"). */
  function wordList(words, word) {
    return words.length > 1 ? words.slice(0, -1).join(", ") + " " + word + " " + words[words.length - 1] : words[0] || "";
  }

  const fmt = {
    int: (v) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Math.round(v).toLocaleString("en")),
    num: (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d)),
    ms: (v) => (v === null || v === undefined || Number.isNaN(v) ? "–" : (v < 10 ? Number(v).toFixed(2) : Number(v).toFixed(1)) + " ms"),
    pct: (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? "–" : (100 * v).toFixed(d) + "%"),
    // Popularity scores are counts, model scores small reals: show each the way it reads best.
    score: (v) => (typeof v !== "number" || !Number.isFinite(v) ? "–" : Number.isInteger(v) ? String(v) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3)),
  };

  // ------------------------------------------------------------------ API access

  /** A failed call: ``status`` is the HTTP status, 0 when the service did not answer. */
  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  /** Readable text from an error body ({detail: str | [{field, reason}], message?}); never a trace. */
  function describeError(status, body) {
    let detail = body ? body.detail : null;
    if (Array.isArray(detail)) {
      const first = detail[0] || {};
      detail = body.message || (first.field ? first.field + ": " : "") + (first.reason || first.msg || "invalid value");
    }
    const clean = typeof detail === "string" && detail.length <= 300 && !/Traceback|File "/.test(detail) ? detail : null;
    if (status === 503) return "The service is not ready yet" + (clean ? " (" + clean + ")" : "") + ". Please try again in a moment.";
    if (status >= 500) {
      const ref = body && typeof body.error_id === "string" ? " (error id " + body.error_id + ")" : "";
      return "The service had a problem answering (HTTP " + status + "). Please try again in a moment" + ref + ".";
    }
    if (status === 404) return clean || "Not found.";
    if (status === 401 || status === 403) {
      if (clean && /X-API-Key|ADMIN_KEY|API_KEY|this machine/.test(clean)) {
        return "This needs a service key" + (status === 403 ? " (the one saved is not accepted)" : "") +
          ": enter it under \u201cService key\u201d at the bottom of the page.";
      }
      return clean || "Not allowed (HTTP " + status + ").";
    }
    return clean || "The request was not accepted (HTTP " + status + ").";
  }

  async function api(path, options) {
    const opts = options || {};
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), opts.timeout || REQUEST_TIMEOUT_MS);
    const init = { method: opts.method || "GET", headers: { Accept: "application/json" }, signal: controller.signal };
    const key = storageGet(STORE_KEY, "");
    if (key) init.headers["X-API-Key"] = key;
    if (opts.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      clearTimeout(timer);
      const timedOut = err && err.name === "AbortError";
      if (!timedOut) markServiceDown();
      throw new ApiError(
        timedOut ? "The service is taking too long to answer. Please try again."
                 : "The recommendation service is unreachable right now. Check that it is running, then try again.",
        0);
    }
    let body = null;
    try {
      const text = await response.text();
      body = text ? JSON.parse(text) : null;
    } catch (_) {
      body = null;
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) {
      if (response.status === 502 || response.status === 503 || response.status === 504) checkReady();
      throw new ApiError(describeError(response.status, body), response.status);
    }
    return body;
  }

  function query(params) {
    const parts = [];
    for (const [key, value] of Object.entries(params)) {
      if (value === null || value === undefined || value === "") continue;
      parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(value));
    }
    return parts.length ? "?" + parts.join("&") : "";
  }

  /** The ranked list of a recommendation or search response (``items``), empty when absent. */
  function listOf(body) {
    return body && Array.isArray(body.items) ? body.items : [];
  }

  // ------------------------------------------------------------------ service key (footer)

  /** The footer's "Service key" form: saved on this device, sent as X-API-Key with every request. */
  function setUpKeyForm() {
    const form = document.getElementById("key-form");
    if (!form) return;
    const input = document.getElementById("service-key");
    const status = document.getElementById("key-status");
    const show = () => { status.textContent = storageGet(STORE_KEY, "") ? "saved on this device" : "none saved"; };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (value) storageSet(STORE_KEY, value); else { try { localStorage.removeItem(STORE_KEY); } catch (_) { /* nothing saved */ } }
      input.value = "";
      show();
      route(); // the current view asks again, with the key
    });
    show();
  }

  // ------------------------------------------------------------------ API status indicator

  let readyTimer = null;
  let lastReady = null;

  function setStatus(state, text, title) {
    statusEl.dataset.state = state;
    statusText.textContent = text;
    statusEl.title = title || text;
  }

  function markServiceDown() {
    setStatus("down", "Service unavailable", "The recommendation service does not answer.");
    lastReady = null;
    scheduleReady(READY_POLL_DOWN_MS);
  }

  function scheduleReady(ms) {
    clearTimeout(readyTimer);
    readyTimer = setTimeout(checkReady, ms);
  }

  async function checkReady() {
    clearTimeout(readyTimer);
    try {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 5000);
      const response = await fetch("/ready", { headers: { Accept: "application/json" }, signal: controller.signal });
      clearTimeout(timer);
      const body = await response.json().catch(() => null);
      if (response.ok && body) {
        lastReady = body;
        const version = body.model_version || "unknown";
        const trained = body.trained_at;
        setStatus("ok", "Model " + version, "Service ready · model " + version + (trained ? " · trained " + trained : ""));
        scheduleReady(READY_POLL_MS);
      } else {
        lastReady = null;
        const why = body && typeof body.detail === "string" ? body.detail : "no model loaded";
        setStatus("down", "Service unavailable", "The service answers but is not ready: " + why);
        scheduleReady(READY_POLL_DOWN_MS);
      }
    } catch (_) {
      markServiceDown();
    }
    return lastReady;
  }

  // ------------------------------------------------------------------ shared UI pieces

  function loadingGrid(n) {
    const grid = h("div", { class: "grid", "aria-busy": "true", "aria-label": "Loading" });
    for (let i = 0; i < (n || 8); i++) {
      grid.append(h("div", { class: "card skeleton-card", "aria-hidden": "true" },
        h("div", { class: "poster skeleton" }),
        h("div", { class: "card-body" },
          h("div", { class: "skeleton skeleton-line", style: "width: 80%" }),
          h("div", { class: "skeleton skeleton-line", style: "width: 45%" }),
          h("div", { class: "skeleton skeleton-line", style: "width: 65%" }))));
    }
    return grid;
  }

  function errorBox(error, retry) {
    return h("div", { class: "notice error", role: "alert" },
      h("span", {}, h("strong", {}, "Something went wrong. "), error && error.message ? error.message : String(error)),
      retry ? h("button", { class: "btn btn-ghost btn-small", type: "button", onclick: retry }, "Try again") : null);
  }

  function emptyState(title, text) {
    return h("div", { class: "empty-state" }, h("h2", {}, title), h("p", {}, text));
  }

  /** A stable gradient per title so the grid looks like a shelf of posters without any images. */
  function posterStyle(key) {
    let hash = 0;
    for (const ch of String(key)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
    const hue = hash % 360;
    const hue2 = (hue + 40 + (hash >> 9) % 60) % 360;
    return "background: linear-gradient(135deg, hsl(" + hue + " 62% 48%), hsl(" + hue2 + " 70% 34%));";
  }

  function initials(title) {
    const small = /^(the|a|an|of|from|and|in|on|at|to|for|with|de|la|le|el)$/i;
    const words = String(title || "?").replace(/\(\d{4}\)\s*$/, "").split(/[\s:,.\-]+/).filter((w) => w && !small.test(w) && /\w/.test(w));
    return (words.slice(0, 2).map((w) => w[0]).join("") || String(title || "?").trim().charAt(0) || "?").toUpperCase();
  }

  /** The title as people read it. MovieLens-style titles carry the year (shown separately) and file
   * articles last: "Usual Suspects, The (1995)" is shown "The Usual Suspects". The service's reason texts
   * use the same rule (``display_title`` in app/service/core/catalogue.py): keep the two alike. */
  function displayTitle(raw) {
    const text = String(raw).trim();
    const bare = text.replace(/\s*\([0-9]{4}\)\s*$/, "") || text;
    return bare.replace(/^(.+?), (The|A|An|Les|La|Le|Il|El|Das|Der|Die)( \(.*\))?$/, "$2 $1$3");
  }

  function cleanTitle(item) {
    return displayTitle(item.title || "Item " + item.item_id);
  }

  const ICONS = {
    like: "M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 6.6 7.6C6.2 8 6 8.5 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z",
    dislike: "M22 3h-4v12h4V3zM2 14a2 2 0 0 0 2 2h6.3l-1 4.6v.3c0 .4.2.8.4 1.1l1.1 1 6.6-6.6c.4-.4.6-.9.6-1.4V5a2 2 0 0 0-2-2H7c-.8 0-1.5.5-1.8 1.2l-3 7.1c-.1.2-.2.5-.2.7v2z",
    watch: "M12 4.5C7 4.5 2.7 7.6 1 12c1.7 4.4 6 7.5 11 7.5s9.3-3.1 11-7.5c-1.7-4.4-6-7.5-11-7.5zm0 12.5a5 5 0 1 1 0-10 5 5 0 0 1 0 10zm0-8a3 3 0 1 0 0 6 3 3 0 0 0 0-6z",
  };
  /** Each button is a toggle: pressing a pressed one withdraws that engagement. Like and Dislike exclude each other. */
  const ACTIONS = [
    { action: "like", label: "Like", done: "Liked", undone: "Like removed" },
    { action: "dislike", label: "Dislike", done: "Disliked", undone: "Dislike removed" },
    { action: "watch", label: "Watched", done: "Marked as watched", undone: "No longer marked as watched" },
  ];
  const OPPOSITE = { like: "dislike", dislike: "like" };
  const MAX_REACTIONS = 500;

  /** What this device's user has active per item: {item_id: ["like", "watch"]}, newest last. */
  function reactionsOf(userId) {
    const key = STORE_REACTIONS + userId;
    let map = storageGet(key, null);
    if (!map || typeof map !== "object" || Array.isArray(map)) map = {};
    const old = storageGet(STORE_DISLIKED + userId, null); // the page's earlier list of disliked items
    if (Array.isArray(old)) {
      old.forEach((id) => { map[String(id)] = ["dislike"]; });
      storageSet(key, map);
      try { localStorage.removeItem(STORE_DISLIKED + userId); } catch (_) { /* nothing to migrate then */ }
    }
    return map;
  }

  function hasReaction(userId, itemId, action) {
    const list = userId ? reactionsOf(userId)[String(itemId)] : null;
    return Array.isArray(list) && list.includes(action);
  }

  /** Record that ``action`` on the item is now active (on) or withdrawn; a like withdraws a dislike and vice versa. */
  function setReaction(userId, itemId, action, on) {
    if (!userId) return;
    const map = reactionsOf(userId);
    const id = String(itemId);
    let list = (Array.isArray(map[id]) ? map[id] : []).filter((a) => a !== action && (!on || a !== OPPOSITE[action]));
    if (on) list = list.concat([action]);
    delete map[id]; // re-inserted last: the oldest entries go first when the map is full
    if (list.length) map[id] = list;
    const ids = Object.keys(map);
    for (const old of ids.slice(0, Math.max(0, ids.length - MAX_REACTIONS))) delete map[old];
    storageSet(STORE_REACTIONS + userId, map);
  }

  /** Items the user dislikes: never asked for again (the service drops them too). */
  function dislikedItems(userId) {
    return Object.entries(reactionsOf(userId)).filter(([, list]) => Array.isArray(list) && list.includes("dislike")).map(([id]) => id);
  }

  /** Post one engagement, or (withdraw) take back the user's latest active one of that type on the item. */
  function postEngagement(ctx, itemId, action, withdraw) {
    const body = { recset_id: ctx.recset_id, user_id: ctx.user_id, item_id: String(itemId), action_type: action, platform: PLATFORM };
    if (withdraw) body.withdraw = true;
    return api("/events/engagement", { method: "POST", body });
  }

  /** Send a press (or its withdrawal) and keep the stored state in step. Resolves to true when the state changed. */
  async function sendFeedback(ctx, itemId, action, withdraw) {
    try {
      await postEngagement(ctx, itemId, action, withdraw);
    } catch (err) {
      // Nothing active to take back (already withdrawn elsewhere, or a fresh database): it is not active either way.
      if (!(withdraw && err.status === 404)) throw err;
    }
    setReaction(ctx.user_id, itemId, action, !withdraw);
    return true;
  }

  /** Remembered per item so the details page can offer feedback for the list the click came from. */
  const itemContext = new Map();

  /** Like / dislike / watched toggles posting engagements for the list (recset) the item came from.
   * ctx.onFeedback({item, title, action, withdraw, ctx, hadFocus}), when given, runs after the service acknowledged. */
  function feedbackBar(item, ctx) {
    const status = h("p", { class: "fb-status", role: "status", "aria-live": "polite" });
    const bar = h("div", { class: "card-actions", role: "group", "aria-label": "Your feedback" });
    const title = cleanTitle(item);
    const buttons = [];
    const sync = () => {
      for (const [spec, button] of buttons) {
        const on = hasReaction(ctx.user_id, item.item_id, spec.action);
        button.setAttribute("aria-pressed", on ? "true" : "false");
        button.title = on ? spec.done + " · press again to undo" : spec.label;
      }
    };
    for (const spec of ACTIONS) {
      const button = h("button", {
        class: "fb", type: "button", "aria-pressed": "false", dataset: { action: spec.action },
        "aria-label": spec.label + " " + title,
        onclick: async (event) => {
          event.preventDefault();
          event.stopPropagation();
          const withdraw = button.getAttribute("aria-pressed") === "true";
          const hadFocus = bar.contains(document.activeElement);
          buttons.forEach(([, b]) => { b.disabled = true; });
          bar.setAttribute("aria-busy", "true");
          status.className = "fb-status";
          status.textContent = "Saving…";
          let changed = false;
          try {
            changed = await sendFeedback(ctx, item.item_id, spec.action, withdraw);
            status.className = "fb-status ok";
            status.textContent = withdraw ? spec.undone : spec.done + " · recorded";
          } catch (err) {
            status.className = "fb-status err";
            status.textContent = "Not recorded: " + err.message;
          } finally {
            buttons.forEach(([, b]) => { b.disabled = false; });
            bar.removeAttribute("aria-busy");
            sync();
            if (hadFocus && !bar.contains(document.activeElement)) button.focus();
          }
          if (changed && ctx.onFeedback) ctx.onFeedback({ item, title, action: spec.action, withdraw, ctx, hadFocus });
        },
      }, s("svg", { viewBox: "0 0 24 24", "aria-hidden": "true", focusable: "false" }, s("path", { d: ICONS[spec.action] })),
      h("span", { class: "fb-label" }, spec.label));
      buttons.push([spec, button]);
      bar.append(button);
    }
    sync();
    bar.append(status);
    return bar;
  }

  /** One recommendation card. ctx: {recset_id, user_id} of the list it belongs to (null: no feedback).
   * Raw scores are "technical details" (hidden unless the details switch is on). */
  function card(item, ctx, isNew) {
    const title = cleanTitle(item);
    const genres = Array.isArray(item.genres) ? item.genres : [];
    const reasons = Array.isArray(item.reasons) ? item.reasons : (item.reason ? [item.reason] : []);
    const link = h("a", {
      href: "#/item/" + encodeURIComponent(item.item_id),
      onclick: () => { if (ctx) itemContext.set(String(item.item_id), { recset_id: ctx.recset_id, user_id: ctx.user_id }); },
    }, title);
    return h("article", { class: isNew ? "card card-new" : "card", dataset: { itemId: item.item_id, new: isNew ? "true" : null } },
      h("div", { class: "poster", style: posterStyle(item.title || item.item_id), "aria-hidden": "true" },
        initials(title), item.rank ? h("span", { class: "rank" }, "#" + item.rank) : null),
      h("div", { class: "card-body" },
        h("h3", { class: "card-title" }, link),
        h("div", { class: "card-meta" },
          h("span", {}, item.year ? String(item.year) : "Year unknown"),
          isNew ? h("span", { class: "new-tag" }, "New") : null,
          typeof item.score === "number" ? h("span", { class: "score tech", title: "Ranking score" }, "score " + fmt.score(item.score)) : null),
        genres.length ? h("div", { class: "chips" }, genres.map((g) => h("span", { class: "chip" }, g))) : null,
        reasons.length ? h("ul", { class: "reasons", "aria-label": "Why this is recommended" }, reasons.map((r) => h("li", {}, r))) : null),
      ctx && ctx.recset_id ? feedbackBar(item, ctx) : null);
  }

  /** ``fresh``: item ids to mark as new in this list (after an in-place update). */
  function cardGrid(items, ctx, fresh) {
    return h("div", { class: "grid" }, items.map((item) => card(item, ctx, fresh ? fresh.has(String(item.item_id)) : false)));
  }

  /** Why the list is not fully personal, in words, from the response's fallback_used/engine/strategy. */
  function fallbackNotice(body) {
    const popular = body.engine === "popular" || body.strategy === "popular" || body.strategy === "seed_genres";
    let lead;
    let text;
    if (popular) {
      lead = "No history yet. ";
      text = "Here is what is popular right now. Like a few titles or mark them as watched and your picks will follow.";
    } else if (body.engine === "baseline") {
      lead = "Not enough history for your personal model yet. ";
      text = "These picks blend popularity, ratings and the genres you like.";
    } else {
      lead = "Partly popular picks. ";
      text = "The personal model had too few matching titles, so the list was topped up with popular ones.";
    }
    return h("div", { class: "notice", role: "note", id: "fallback-notice" }, h("span", {}, h("strong", {}, lead), text));
  }

  /** The service's own remarks about a list (filters too narrow, unknown seeds, ...): technical details. */
  function notesOf(body) {
    const notes = body && Array.isArray(body.notes) ? body.notes.filter((n) => typeof n === "string") : [];
    return notes.length ? h("ul", { class: "list-notes tech", "aria-label": "Notes from the service" }, notes.map((n) => h("li", {}, n))) : null;
  }

  /** "engine nn · model v3": technical details of a list, after its consumer-facing count. */
  function listMeta(count, body, id) {
    const tech = [body && body.engine ? "engine " + body.engine : null, body && body.model_version ? "model " + body.model_version : null].filter(Boolean);
    return h("span", { class: "meta", id: id || null }, count + (count === 1 ? " title" : " titles"),
      tech.length ? h("span", { class: "tech" }, " · " + tech.join(" · ")) : null);
  }

  /** Raw scores, engines and service notes stay hidden unless this switch (remembered on the device) is on. */
  function detailsOn() { return storageGet(STORE_DETAILS, false) === true; }
  function applyDetails(on) { document.body.classList.toggle("show-details", on); }
  function detailsSwitch() {
    const input = h("input", { type: "checkbox", id: "show-details", role: "switch" });
    input.checked = detailsOn();
    input.addEventListener("change", () => { storageSet(STORE_DETAILS, input.checked); applyDetails(input.checked); });
    return h("label", { class: "switch switch-small", for: "show-details", title: "Show ranking scores, the engine and notes from the service" },
      input, "Technical details");
  }

  function listContext(body, fallbackUser) {
    return { recset_id: body && body.recset_id, user_id: body && body.user_id != null ? String(body.user_id) : fallbackUser };
  }

  /** Genre names for pickers: the model's genres from /ready, else those of the popular list. */
  let genreCache = null;
  async function loadGenres() {
    if (genreCache) return genreCache;
    const found = new Set();
    const collect = (items) => items.forEach((it) => (it.genres || []).forEach((g) => found.add(g)));
    const ready = lastReady || (await checkReady());
    if (ready && Array.isArray(ready.genres) && ready.genres.length) {
      ready.genres.forEach((g) => found.add(g));
    } else {
      try { collect(listOf(await api("/popular" + query({ k: 100 })))); } catch (_) { /* picker stays empty */ }
    }
    const names = Array.from(found).filter(Boolean).sort((a, b) => a.localeCompare(b));
    if (names.length) genreCache = names; // an outage is not remembered
    return names;
  }

  // ------------------------------------------------------------------ views

  /** Guard against a slow answer for a view the user already left. */
  let renderToken = 0;
  function current(token) { return token === renderToken; }

  function pageHead(title, text, extra) {
    return h("div", { class: "page-head" }, h("div", {}, h("h1", {}, title), text ? h("p", {}, text) : null), extra || null);
  }

  // ---- For you
  /** What the feedback notice says after an acknowledged press. */
  function feedbackText(fb) {
    const t = "“" + fb.title + "”";
    if (fb.withdraw) {
      return { like: "Removed your like of " + t + ".", dislike: "Removed your dislike of " + t + ".", watch: t + " is no longer marked as watched." }[fb.action];
    }
    return { like: "Liked " + t + ".", dislike: "Disliked " + t + ": it will not be suggested again.", watch: "Marked " + t + " as watched." }[fb.action];
  }

  function viewForYou(token) {
    const saved = storageGet(STORE_USER, "");
    const input = h("input", { class: "input", id: "user-id", name: "user_id", autocomplete: "off", placeholder: "e.g. 42", value: saved || "", maxlength: 128, required: true });
    const engine = h("select", { class: "select", id: "engine" },
      [["auto", "Best available"], ["hybrid", "Multi-stage ranker"], ["nn", "Personal model"], ["baseline", "Heuristic"], ["popular", "Popular"]]
        .map(([v, label]) => h("option", { value: v }, label)));
    const results = h("section", { class: "section", "aria-live": "polite", id: "for-you-results" });
    // One lasting live region: what a press did and how the list changed (the list itself updates silently).
    const feedbackNote = h("div", { class: "notice ok feedback-notice", id: "feedback-notice", role: "status", tabindex: "-1", hidden: true });
    const form = h("form", { class: "panel toolbar", onsubmit: (e) => { e.preventDefault(); load(); } },
      h("div", { class: "field", style: "flex: 1 1 220px" }, h("label", { for: "user-id" }, "Your user id"), input),
      h("div", { class: "field" }, h("label", { for: "engine" }, "Engine"), engine),
      h("button", { class: "btn", type: "submit" }, "Show my picks"));
    let shown = null; // {userId, ids} of the list on screen
    let loadSeq = 0;

    /** Load the list; ``update`` (after a Like, Dislike, Watched or an undo) refreshes it in place instead:
     * no skeleton, new titles marked, the notice says what happened, focus stays near where it was. */
    async function load(update) {
      const userId = update ? update.ctx.user_id : input.value.trim();
      const seq = ++loadSeq;
      if (!userId) {
        results.replaceChildren(emptyState("Who is watching?", "Enter your user id to see picks made for you, or try Discover."));
        input.focus();
        return;
      }
      if (update) {
        results.setAttribute("aria-live", "off");
        results.setAttribute("aria-busy", "true");
      } else {
        storageSet(STORE_USER, userId);
        feedbackNote.hidden = true;
        feedbackNote.replaceChildren();
        results.setAttribute("aria-live", "polite");
        results.replaceChildren(loadingGrid(8));
      }
      try {
        const body = await api("/recommend", {
          method: "POST",
          body: { user_id: userId, k: LIST_K, engine: engine.value, exclude_items: dislikedItems(userId), platform: PLATFORM },
        });
        if (!current(token) || seq !== loadSeq) return;
        const items = listOf(body);
        const ids = items.map((it) => String(it.item_id));
        const before = update && shown && shown.userId === userId ? new Set(shown.ids) : null;
        const fresh = before ? new Set(ids.filter((id) => !before.has(id))) : null;
        const ctx = listContext(body, userId);
        ctx.onFeedback = (fb) => { if (current(token)) load(Object.assign(fb, { index: ids.indexOf(String(fb.item.item_id)) })); };
        const parts = [];
        if (body && body.fallback_used) parts.push(fallbackNotice(body));
        parts.push(h("div", { class: "section-head" },
          h("h2", {}, body && body.fallback_used ? "Popular picks for " + userId : "Picked for " + userId),
          listMeta(items.length, body)));
        parts.push(items.length ? cardGrid(items, ctx, fresh)
                                : emptyState("Nothing to recommend", "No titles are left to suggest for this user with these settings."));
        parts.push(notesOf(body) || "");
        const active = document.activeElement;
        const focusWasHere = !active || active === document.body || results.contains(active) || feedbackNote.contains(active);
        results.replaceChildren(...parts);
        results.removeAttribute("aria-busy");
        shown = { userId, ids };
        if (update) {
          showFeedback(update, fresh);
          if (update.hadFocus && focusWasHere) restoreFocus(update);
        }
      } catch (err) {
        if (!current(token) || seq !== loadSeq) return;
        results.removeAttribute("aria-busy");
        if (update) {
          showFeedback(update, null, err);
        } else {
          results.replaceChildren(errorBox(err, () => load()));
        }
      }
    }

    function showFeedback(fb, fresh, error) {
      const n = fresh ? fresh.size : 0;
      const more = error ? " Your picks could not be updated: " + error.message
        : n ? " Your picks are updated: " + n + " new " + (n === 1 ? "title" : "titles") + "." : "";
      const undo = fb.withdraw ? null
        : h("button", { class: "btn btn-ghost btn-small", type: "button", id: "feedback-undo", onclick: () => undoFeedback(fb) }, "Undo");
      const retry = error ? h("button", { class: "btn btn-ghost btn-small", type: "button", onclick: () => load(fb) }, "Update my picks") : null;
      feedbackNote.className = error ? "notice warn feedback-notice" : "notice ok feedback-notice";
      feedbackNote.replaceChildren(h("span", {}, feedbackText(fb) + more), h("span", { class: "notice-actions" }, retry, undo));
      feedbackNote.hidden = false;
    }

    async function undoFeedback(fb) {
      const button = feedbackNote.querySelector("#feedback-undo");
      if (button) button.disabled = true;
      try {
        await sendFeedback(fb.ctx, fb.item.item_id, fb.action, true);
      } catch (err) {
        if (button) button.disabled = false;
        feedbackNote.className = "notice warn feedback-notice";
        feedbackNote.firstChild.textContent = "Could not undo: " + err.message;
        return;
      }
      load(Object.assign({}, fb, { withdraw: true, hadFocus: true, index: -1 }));
    }

    /** After an in-place update: the same button if its card is still there, else the card now in its place, else the notice. */
    function restoreFocus(fb) {
      const cards = Array.from(results.querySelectorAll(".grid .card[data-item-id]"));
      const same = cards.find((c) => c.dataset.itemId === String(fb.item.item_id));
      let target = same ? same.querySelector('button[data-action="' + fb.action + '"]') : null;
      if (!target && fb.index >= 0 && cards.length) target = cards[Math.min(fb.index, cards.length - 1)].querySelector(".card-title a");
      (target || feedbackNote).focus();
    }

    view.replaceChildren(
      pageHead("For you", "Personal picks from what you watched and liked. Your id is remembered on this device.", detailsSwitch()),
      form, feedbackNote, results);
    if (saved) load();
    else results.replaceChildren(emptyState("Who is watching?", "Enter your user id to see picks made for you. New here? Try Discover."));
  }

  // ---- Discover
  function viewDiscover(token) {
    const state = storageGet(STORE_PICKS, { items: [], genres: [] });
    state.items = Array.isArray(state.items) ? state.items : [];
    state.genres = Array.isArray(state.genres) ? state.genres : [];
    const save = () => storageSet(STORE_PICKS, state);

    const input = h("input", {
      class: "input", id: "search", type: "search", autocomplete: "off", placeholder: "Search titles, e.g. Star",
      role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false", "aria-controls": "search-results",
    });
    const listbox = h("ul", { class: "listbox", id: "search-results", role: "listbox", "aria-label": "Matching titles", hidden: true });
    const pickedBox = h("div", { class: "chips", id: "picked", "aria-live": "polite" });
    const genreBox = h("div", { class: "chips", id: "seed-genres", role: "group", "aria-labelledby": "genres-label", "aria-describedby": "genres-hint" });
    const go = h("button", { class: "btn", type: "button", id: "discover-go", onclick: () => recommend() }, "Recommend");
    const results = h("section", { class: "section", id: "discover-results", "aria-live": "polite" });
    let options = [];
    let active = -1;
    let searchSeq = 0;

    function renderPicked() {
      pickedBox.replaceChildren(...(state.items.length
        ? state.items.map((it) => h("span", { class: "picked" }, it.title,
          h("button", { type: "button", "aria-label": "Remove " + it.title, onclick: () => { state.items = state.items.filter((x) => x.item_id !== it.item_id); save(); renderPicked(); } }, "×")))
        : [h("span", { class: "chip" }, "No movies picked yet")]));
      go.disabled = !state.items.length && !state.genres.length;
    }

    function closeList() {
      listbox.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function setActive(i) {
      active = i;
      Array.from(listbox.children).forEach((li, j) => li.setAttribute("aria-selected", j === i ? "true" : "false"));
      if (i >= 0 && listbox.children[i]) {
        input.setAttribute("aria-activedescendant", listbox.children[i].id);
        listbox.children[i].scrollIntoView({ block: "nearest" });
      }
    }

    function pick(item) {
      if (!state.items.some((x) => x.item_id === String(item.item_id))) {
        state.items.push({ item_id: String(item.item_id), title: cleanTitle(item) });
        save();
      }
      input.value = "";
      closeList();
      renderPicked();
      input.focus();
    }

    const search = debounce(async () => {
      const text = input.value.trim();
      const seq = ++searchSeq;
      if (!text) { closeList(); return; }
      try {
        const body = await api("/items" + query({ query: text, limit: 8 }));
        if (seq !== searchSeq || !current(token)) return;
        options = listOf(body);
        listbox.replaceChildren(...(options.length
          ? options.map((it, i) => h("li", { id: "opt-" + i, role: "option", "aria-selected": "false", dataset: { itemId: it.item_id }, onmousedown: (e) => { e.preventDefault(); pick(it); } },
            h("span", {}, cleanTitle(it)), h("span", { class: "sub" }, [it.year, (it.genres || []).slice(0, 2).join(", ")].filter(Boolean).join(" · "))))
          : [h("li", { class: "empty", role: "option", "aria-disabled": "true" }, "No titles match “" + text + "”")]));
        listbox.hidden = false;
        input.setAttribute("aria-expanded", "true");
        setActive(options.length ? 0 : -1);
      } catch (err) {
        if (seq !== searchSeq || !current(token)) return;
        options = [];
        listbox.replaceChildren(h("li", { class: "empty", role: "option", "aria-disabled": "true" }, "Search failed: " + err.message));
        listbox.hidden = false;
        input.setAttribute("aria-expanded", "true");
      }
    }, 180);

    input.addEventListener("input", search);
    input.addEventListener("keydown", (e) => {
      if (e.key === "ArrowDown" && options.length) { e.preventDefault(); setActive((active + 1) % options.length); }
      else if (e.key === "ArrowUp" && options.length) { e.preventDefault(); setActive((active - 1 + options.length) % options.length); }
      else if (e.key === "Enter") { e.preventDefault(); if (!listbox.hidden && active >= 0 && options[active]) pick(options[active]); }
      else if (e.key === "Escape") closeList();
    });
    input.addEventListener("blur", () => setTimeout(closeList, 120));

    async function renderGenres() {
      genreBox.replaceChildren(h("span", { class: "chip" }, "Loading genres…"));
      const genres = await loadGenres();
      if (!current(token)) return;
      genreBox.replaceChildren(...(genres.length ? genres.map((g) => h("button", {
        type: "button", class: "toggle-chip", "aria-pressed": state.genres.includes(g) ? "true" : "false",
        onclick: (e) => {
          state.genres = state.genres.includes(g) ? state.genres.filter((x) => x !== g) : state.genres.concat([g]);
          e.currentTarget.setAttribute("aria-pressed", state.genres.includes(g) ? "true" : "false");
          save();
          renderPicked();
        },
      }, g)) : [h("span", { class: "chip" }, "Genres are unavailable right now")]));
    }

    /** Picked movies are scored as a history; picked genres then narrow the list (a filter applied before
     * the top-k cut). Genres alone ask for what is popular in them. */
    async function recommend() {
      if (!state.items.length && !state.genres.length) return;
      results.replaceChildren(loadingGrid(8));
      const visitor = visitorId();
      const seeds = state.items.map((x) => x.item_id);
      const genres = state.genres.slice();
      const ask = { user_id: visitor, k: LIST_K, platform: PLATFORM };
      if (seeds.length) {
        ask.seed_item_ids = seeds;
        if (genres.length) ask.genres = genres;
      } else {
        ask.seed_genres = genres;
      }
      try {
        const body = await api("/recommend", { method: "POST", body: ask });
        if (!current(token)) return;
        const items = listOf(body);
        const names = state.items.map((x) => x.title);
        const narrowed = seeds.length && genres.length;
        const unknown = (body && body.unknown_seed_item_ids) || [];
        // Once this device has liked or watched titles, the service ranks from that history instead of the picks.
        const fromHistory = seeds.length && unknown.length < seeds.length && body && body.strategy !== "seed_items";
        const inGenres = narrowed ? ", in " + wordList(genres, "or") : "";
        const because = fromHistory ? "Picked from what you liked and watched" + inGenres
          : names.length ? "Because you picked " + wordList(names, "and") + inGenres
          : "Because you like " + wordList(genres, "and");
        const parts = [];
        if (unknown.length) {
          parts.push(h("div", { class: "notice warn", role: "note" }, "The model does not know some of your picks yet (" + unknown.length + "); they were skipped."));
        }
        if (fromHistory) {
          parts.push(h("div", { class: "notice", role: "note", id: "seeds-unused" },
            "You have liked or watched titles on this device, so these picks follow what you did; the movies picked above are not used for them."));
        }
        parts.push(h("div", { class: "section-head" }, h("h2", { id: "because" }, because), listMeta(items.length, body)));
        if (narrowed && items.length && items.length < LIST_K) {
          parts.push(h("div", { class: "notice", role: "note", id: "genre-note" },
            "Only " + items.length + (items.length === 1 ? " title" : " titles") + " in " + wordList(genres, "or") + " " + (items.length === 1 ? "is" : "are") + " left to suggest beside your picks."));
        }
        if (items.length) {
          parts.push(cardGrid(items, listContext(body, visitor)));
        } else if (narrowed) {
          parts.push(h("div", { class: "empty-state", id: "genre-empty" },
            h("h2", {}, "Nothing in " + wordList(genres, "or") + " to suggest"),
            h("p", {}, "No title in " + (genres.length === 1 ? "this genre" : "these genres") + " is left to suggest beside your picks. Choose other genres, or clear them to see everything like your picks."),
            h("p", { style: "margin-top: 12px" }, h("button", { class: "btn btn-ghost", type: "button", id: "clear-genres", onclick: clearGenres }, "Clear genres"))));
        } else {
          parts.push(emptyState("Nothing similar found", "Try other movies or fewer genres."));
        }
        parts.push(notesOf(body) || "");
        results.replaceChildren(...parts);
      } catch (err) {
        if (current(token)) results.replaceChildren(errorBox(err, recommend));
      }
    }

    function clearGenres() {
      state.genres = [];
      save();
      genreBox.querySelectorAll("button[aria-pressed]").forEach((b) => b.setAttribute("aria-pressed", "false"));
      renderPicked();
      recommend();
      go.focus();
    }

    view.replaceChildren(
      pageHead("Discover", "New here? Pick a few movies you love and, if you like, some genres. We'll find more like them.", detailsSwitch()),
      h("div", { class: "panel" },
        h("div", { class: "toolbar" },
          h("div", { class: "field combo" }, h("label", { for: "search" }, "Find a movie you like"), input, listbox),
          go),
        h("div", { class: "section" }, h("p", { class: "field-label" }, "Your picks"), pickedBox),
        h("div", { class: "section" }, h("p", { class: "field-label", id: "genres-label" }, "Genres (optional)"),
          h("p", { class: "field-hint", id: "genres-hint" }, "With movies picked, only titles in the genres you choose are suggested. Genres alone bring what is popular in them."),
          genreBox)),
      results);
    renderPicked();
    renderGenres();
    if (state.items.length || state.genres.length) recommend();
    else results.replaceChildren(emptyState("Start with a movie", "Search above and pick one or more titles you enjoyed."));
  }

  // ---- Popular
  function viewPopular(token, params) {
    const genre = h("select", { class: "select", id: "genre", name: "genre" }, h("option", { value: "" }, "All genres"));
    const yearMin = h("input", { class: "input input-year", id: "year-min", type: "number", inputmode: "numeric", min: 1000, max: 3000, placeholder: "From", value: params.get("year_min") || "" });
    const yearMax = h("input", { class: "input input-year", id: "year-max", type: "number", inputmode: "numeric", min: 1000, max: 3000, placeholder: "To", value: params.get("year_max") || "" });
    const trending = h("input", { type: "checkbox", id: "trending", role: "switch" });
    trending.checked = params.get("trending") === "1";
    const results = h("section", { class: "section", id: "popular-results", "aria-live": "polite" });
    const form = h("form", { class: "panel toolbar", onsubmit: (e) => { e.preventDefault(); apply(); } },
      h("div", { class: "field", style: "flex: 1 1 180px" }, h("label", { for: "genre" }, "Genre"), genre),
      h("div", { class: "field field-years" }, h("span", { class: "field-label", id: "years-label" }, "Years"),
        h("div", { style: "display:flex; gap:8px; align-items:center", role: "group", "aria-labelledby": "years-label" },
          h("label", { class: "visually-hidden", for: "year-min" }, "From year"), yearMin, "–",
          h("label", { class: "visually-hidden", for: "year-max" }, "To year"), yearMax)),
      h("label", { class: "switch", for: "trending" }, trending, "Trending now"),
      h("button", { class: "btn", type: "submit" }, "Apply"));

    /** Filters live in the hash, so a filtered list can be bookmarked and Back works. */
    function apply() {
      const next = "#/popular" + query({ genre: genre.value, year_min: yearMin.value, year_max: yearMax.value, trending: trending.checked ? "1" : "" });
      if (location.hash === next) load();
      else location.hash = next;
    }
    genre.addEventListener("change", apply);
    trending.addEventListener("change", apply);

    async function load() {
      const lo = params.get("year_min");
      const hi = params.get("year_max");
      if (lo && hi && Number(lo) > Number(hi)) {
        results.replaceChildren(h("div", { class: "notice warn", role: "alert" }, "The start year must not be after the end year."));
        return;
      }
      results.replaceChildren(loadingGrid(8));
      const isTrending = params.get("trending") === "1";
      const viewer = storageGet(STORE_USER, "") || visitorId(); // logged with the list, so feedback is theirs
      try {
        const body = await api("/popular" + query({ k: LIST_K, genre: params.get("genre"), year_min: lo, year_max: hi, trending: isTrending ? "true" : "", user_id: viewer, platform: PLATFORM }));
        if (!current(token)) return;
        const items = listOf(body);
        const what = (isTrending ? "Trending" : "Most popular") + (params.get("genre") ? " in " + params.get("genre") : "") +
          (lo || hi ? " · " + (lo || "…") + "–" + (hi || "…") : "");
        results.replaceChildren(
          h("div", { class: "section-head" }, h("h2", { id: "popular-title" }, what), listMeta(items.length, body)),
          items.length ? cardGrid(items, listContext(body, viewer))
                       : emptyState("No titles match", "Try another genre or a wider year range."),
          (items.length && notesOf(body)) || "");
      } catch (err) {
        if (current(token)) results.replaceChildren(errorBox(err, load));
      }
    }

    view.replaceChildren(pageHead("Popular", "What everyone is watching. Narrow it down by genre and years, or switch to what is trending now.", detailsSwitch()), form, results);
    load();
    loadGenres().then((genres) => {
      if (!current(token)) return;
      const selected = params.get("genre") || "";
      const names = selected && !genres.includes(selected) ? genres.concat([selected]) : genres;
      genre.append(...names.map((g) => h("option", { value: g }, g)));
      genre.value = selected;
    });
  }

  // ---- Details
  function viewItem(token, itemId) {
    const head = h("div", { id: "item-detail", "aria-live": "polite" }, h("div", { class: "detail" },
      h("div", { class: "poster skeleton" }),
      h("div", {}, h("div", { class: "skeleton skeleton-line", style: "width: 60%; height: 28px" }), h("div", { class: "skeleton skeleton-line", style: "width: 30%" }))));
    const similar = h("section", { class: "section", id: "similar", "aria-live": "polite" });
    view.replaceChildren(h("a", { class: "back", href: "#", onclick: (e) => { e.preventDefault(); history.length > 1 ? history.back() : (location.hash = "#/popular"); } }, "← Back"), head, similar);

    async function loadItem() {
      try {
        const item = await api("/items/" + encodeURIComponent(itemId));
        if (!current(token)) return;
        const title = cleanTitle(item);
        document.title = title + " · Reelpick";
        const facts = [
          ["Year", item.year || "–"],
          ["Popularity", item.popularity != null ? fmt.int(item.popularity) : "–"],
          ["Average rating", item.avg_rating != null && Number.isFinite(Number(item.avg_rating)) ? fmt.num(item.avg_rating, 2) + " / 5" : "not rated yet"],
        ];
        if (item.n_ratings != null) facts.push(["Ratings", fmt.int(item.n_ratings)]);
        const ctx = itemContext.get(String(itemId));
        head.replaceChildren(h("div", { class: "detail" },
          h("div", { class: "poster", style: posterStyle(item.title || itemId), "aria-hidden": "true" }, initials(title)),
          h("div", {},
            h("h1", {}, title),
            h("div", { class: "chips" }, (item.genres || []).map((g) => h("a", { class: "chip", href: "#/popular" + query({ genre: g }) }, g))),
            h("div", { class: "facts" }, facts.map(([label, value]) => h("div", { class: "fact" }, h("div", { class: "label" }, label), h("div", { class: "value" }, String(value))))),
            ctx && ctx.recset_id ? h("div", { class: "panel" }, h("p", { class: "field-label" }, "Seen it? Tell us"), feedbackBar(item, ctx)) : null)));
      } catch (err) {
        if (!current(token)) return;
        head.replaceChildren(err.status === 404
          ? emptyState("Title not found", err.message)
          : errorBox(err, loadItem));
      }
    }

    async function loadSimilar() {
      similar.replaceChildren(h("div", { class: "section-head" }, h("h2", {}, "More like this")), loadingGrid(4));
      const ctxUser = (itemContext.get(String(itemId)) || {}).user_id || storageGet(STORE_USER, "") || visitorId();
      try {
        const body = await api("/similar", { method: "POST", body: { item_id: String(itemId), k: LIST_K, user_id: ctxUser, platform: PLATFORM } });
        if (!current(token)) return;
        const items = listOf(body);
        similar.replaceChildren(
          h("div", { class: "section-head" }, h("h2", {}, "More like this"), h("div", { class: "head-tools" }, listMeta(items.length, body), detailsSwitch())),
          items.length ? cardGrid(items, listContext(body, ctxUser)) : emptyState("No similar titles", "The model has nothing close to this one yet."));
      } catch (err) {
        if (!current(token)) return;
        similar.replaceChildren(h("div", { class: "section-head" }, h("h2", {}, "More like this")),
          err.status === 404 ? emptyState("No similar titles", err.message) : errorBox(err, loadSimilar));
      }
    }

    loadItem();
    loadSimilar();
  }

  // ---- Dashboard
  const WINDOWS = {
    "1h": { label: "Last hour", span: 3600, buckets: 12 },
    "24h": { label: "Last 24 hours", span: 86400, buckets: 24 },
    "7d": { label: "Last 7 days", span: 7 * 86400, buckets: 28 },
  };
  const PALETTE = ["#4f46e5", "#0f8a5f", "#e8590c", "#c2255c", "#1c7ed6", "#8d6e00", "#5f3dc4", "#2b8a3e"];

  /** Run async jobs with at most `limit` in flight (the dashboard asks for many buckets at once). */
  async function pooled(jobs, limit) {
    const results = new Array(jobs.length);
    let next = 0;
    async function worker() {
      while (next < jobs.length) {
        const i = next++;
        try { results[i] = { ok: true, value: await jobs[i]() }; } catch (err) { results[i] = { ok: false, error: err }; }
      }
    }
    await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
    return results;
  }

  /** A finite number field of a metrics answer, or null (no traffic: the service sends null). */
  function numberOf(obj, name) {
    const v = obj && obj[name];
    return typeof v === "number" && Number.isFinite(v) ? v : null;
  }

  /** ``latency_ms`` {mean, p50, p95, p99} of a /metrics/summary block (overall or one endpoint). */
  function latencyOf(block) {
    const lat = (block && block.latency_ms) || {};
    return { mean: numberOf(lat, "mean"), p50: numberOf(lat, "p50"), p95: numberOf(lat, "p95"), p99: numberOf(lat, "p99") };
  }

  function perEndpoint(summary) {
    return Object.entries((summary && summary.by_endpoint) || {})
      .map(([endpoint, block]) => Object.assign({ endpoint, requests: numberOf(block, "requests") }, latencyOf(block)));
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 4, 8, 10]) if (v <= m * p + 1e-12) return m * p; // quarters stay round numbers
    return 10 * p;
  }

  function timeLabel(t, span) {
    const d = new Date(t * 1000);
    if (span > 2 * 86400) return d.toLocaleDateString("en", { month: "short", day: "numeric" });
    return d.toLocaleTimeString("en", { hour: "2-digit", minute: "2-digit", hour12: false });
  }

  /** An SVG line (or bar) chart of series [{name, values: [number|null]}] over bucket start times. */
  function chart(opts) {
    const narrow = window.innerWidth < 600; // a smaller canvas keeps the labels readable on a phone
    const W = narrow ? 340 : 560, H = narrow ? 190 : 220, L = 46, R = 10, T = 12, B = 28;
    const times = opts.times;
    const n = times.length;
    const all = opts.series.flatMap((sr) => sr.values).filter((v) => typeof v === "number" && Number.isFinite(v));
    const max = opts.max || niceMax(Math.max(0, ...all));
    const x = (i) => (opts.bars ? L + ((i + 0.5) * (W - L - R)) / n : L + (n > 1 ? (i * (W - L - R)) / (n - 1) : (W - L - R) / 2));
    const y = (v) => T + (H - T - B) * (1 - v / max);
    const svg = s("svg", { class: "chart", viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": opts.label, preserveAspectRatio: "xMidYMid meet" });
    svg.append(s("title", {}, opts.label));
    const scale = opts.unit === "pct" ? 100 : 1;
    const stepShown = (max / 4) * scale;
    let decimals = 0; // fewest decimals that show every tick exactly (0.25% -> 2)
    while (opts.unit !== "int" && decimals < 3 && Math.abs(Math.round(stepShown * 10 ** decimals) - stepShown * 10 ** decimals) > 1e-6) decimals++;
    const tick = (v) => (v * scale).toFixed(v === 0 ? 0 : decimals) + (opts.unit === "pct" ? "%" : "");
    for (let g = 0; g <= 4; g++) {
      const v = (max * g) / 4;
      svg.append(s("line", { class: "grid-line", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      svg.append(s("text", { class: "axis-label", x: L - 6, y: y(v) + 4, "text-anchor": "end" }, tick(v)));
    }
    const step = Math.max(1, Math.ceil(n / (narrow ? 4 : 6)));
    for (let i = 0; i < n; i += step) {
      svg.append(s("text", { class: "axis-label", x: x(i), y: H - 8, "text-anchor": "middle" }, timeLabel(times[i], opts.span)));
    }
    opts.series.forEach((sr, k) => {
      const color = sr.color || PALETTE[k % PALETTE.length];
      if (opts.bars) {
        const bw = Math.max(2, ((W - L - R) / n) * 0.7);
        sr.values.forEach((v, i) => {
          if (typeof v !== "number" || !(v > 0)) return;
          svg.append(s("rect", { x: x(i) - bw / 2, y: y(v), width: bw, height: H - B - y(v), rx: 2, fill: color },
            s("title", {}, timeLabel(times[i], opts.span) + ": " + opts.format(v))));
        });
        return;
      }
      let d = "";
      let pen = false;
      sr.values.forEach((v, i) => {
        if (typeof v !== "number" || !Number.isFinite(v)) { pen = false; return; }
        d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
        pen = true;
      });
      if (d) svg.append(s("path", { class: "line", d, stroke: color }));
      sr.values.forEach((v, i) => {
        if (typeof v !== "number" || !Number.isFinite(v)) return;
        svg.append(s("circle", { cx: x(i), cy: y(v), r: 2.6, fill: color },
          s("title", {}, sr.name + " · " + timeLabel(times[i], opts.span) + ": " + opts.format(v))));
      });
    });
    if (!all.length) {
      svg.append(s("text", { class: "no-data", x: (L + W - R) / 2, y: (T + H - B) / 2, "text-anchor": "middle" }, "No data in this window yet"));
    }
    const legend = opts.series.length > 1 || opts.legend
      ? h("div", { class: "legend" }, opts.series.map((sr, k) => h("span", {}, h("i", { style: "background:" + (sr.color || PALETTE[k % PALETTE.length]) }), sr.name)))
      : null;
    return h("figure", { class: "chart-card", style: "margin:0", dataset: { chart: opts.id } },
      h("h3", {}, opts.title), h("p", { class: "sub" }, opts.sub), svg, legend);
  }

  function kpi(label, value, sub) {
    return h("div", { class: "kpi" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value), sub ? h("div", { class: "sub" }, sub) : null);
  }

  function viewDashboard(token, params) {
    const windowKey = WINDOWS[params.get("window")] ? params.get("window") : "1h";
    const win = WINDOWS[windowKey];
    const select = h("select", { class: "select", id: "window", "aria-label": "Time window" },
      Object.entries(WINDOWS).map(([key, w]) => h("option", { value: key }, w.label)));
    select.value = windowKey;
    select.addEventListener("change", () => { location.hash = "#/dashboard" + query({ window: select.value }); });
    const refresh = h("button", { class: "btn btn-ghost", type: "button", onclick: () => load(false) }, "Refresh");
    const body = h("div", { id: "dashboard-body", "aria-live": "polite" });
    view.replaceChildren(
      pageHead("Dashboard", "How the service is doing: traffic, speed, fallbacks, catalogue coverage and whether people engage with what it shows. Updates every 30 seconds.",
        h("div", { class: "toolbar" }, h("div", { class: "field" }, h("label", { for: "window" }, "Window"), select), refresh)),
      body);

    async function load(quiet) {
      if (!quiet) body.replaceChildren(h("div", { class: "kpis", "aria-busy": "true" }, Array.from({ length: 8 }, () => h("div", { class: "kpi skeleton", style: "height: 78px" }))));
      const now = Math.ceil(Date.now() / 1000) + 1; // include the list served a moment ago
      const size = win.span / win.buckets;
      const start = now - win.span;
      const times = Array.from({ length: win.buckets }, (_, i) => start + i * size);
      const jobs = [
        () => checkReady(),
        () => api("/metrics/summary" + query({ since: start, until: now })),
        () => api("/metrics/pac" + query({ start_ts: start, end_ts: now })),
      ];
      times.forEach((t) => {
        jobs.push(() => api("/metrics/summary" + query({ since: Math.floor(t), until: Math.floor(t + size) })));
        jobs.push(() => api("/metrics/pac" + query({ start_ts: Math.floor(t), end_ts: Math.floor(t + size) })));
      });
      const res = await pooled(jobs, 4);
      if (!current(token)) return;
      const [readyRes, totalRes, pacRes] = res;
      if (!totalRes.ok && !pacRes.ok) {
        body.replaceChildren(errorBox(totalRes.error, () => load(false)));
        return;
      }
      const total = totalRes.ok ? totalRes.value : null;
      const pacTotal = pacRes.ok ? pacRes.value : null;
      const summaries = times.map((_, i) => (res[3 + 2 * i].ok ? res[3 + 2 * i].value : null));
      const pacs = times.map((_, i) => (res[4 + 2 * i].ok ? res[4 + 2 * i].value : null));
      const lat = latencyOf(total);
      const parts = [];
      if (!totalRes.ok || !pacRes.ok) parts.push(errorBox(!totalRes.ok ? totalRes.error : pacRes.error, () => load(false)));
      const requests = numberOf(total, "requests");
      parts.push(h("div", { class: "kpis" },
        kpi("Requests", fmt.int(requests), fmt.num(numberOf(total, "requests_per_minute"), 2) + " per minute"),
        kpi("Unique users", fmt.int(numberOf(total, "unique_users"))),
        kpi("Latency p50", fmt.ms(lat.p50), "mean " + fmt.ms(lat.mean)),
        kpi("Latency p95", fmt.ms(lat.p95)),
        kpi("Latency p99", fmt.ms(lat.p99)),
        kpi("Fallback rate", fmt.pct(numberOf(total, "fallback_rate"))),
        kpi("Coverage", fmt.pct(numberOf(total, "coverage")), "of the catalogue recommended"),
        kpi("PaC", fmt.pct(numberOf(pacTotal, "pac_mean"), 2), fmt.int(numberOf(pacTotal, "impressions")) + " lists · micro " + fmt.pct(numberOf(pacTotal, "pac_micro"), 2))));
      if (requests === 0) {
        parts.push(h("div", { class: "notice", role: "note", style: "margin-top:16px" }, "No recommendation traffic in this window yet. Charts fill in as lists are served."));
      }

      const sub = win.label.toLowerCase() + " · per " + (size >= 3600 ? size / 3600 + " h" : size / 60 + " min");
      const lats = summaries.map(latencyOf);
      const engines = new Set();
      const versions = new Set();
      pacs.forEach((p) => {
        Object.keys((p && p.by_engine) || {}).forEach((k) => engines.add(k));
        Object.keys((p && p.by_model_version) || {}).forEach((k) => versions.add(k));
      });
      // One line per engine (or version); a bucket where it served no list is a gap, not a zero.
      const pacSeries = (name, key) => ({ name, values: pacs.map((p) => numberOf(((p && p[key]) || {})[name], "pac_mean")) });
      parts.push(h("div", { class: "charts" },
        chart({ id: "traffic", title: "Traffic", sub: "Requests " + sub, label: "Requests over time", times, span: win.span, bars: true, format: fmt.int, unit: "int",
          series: [{ name: "requests", values: summaries.map((sm) => numberOf(sm, "requests")) }] }),
        chart({ id: "latency", title: "Latency", sub: "p50 / p95 / p99 in ms, " + sub, label: "Latency percentiles over time", times, span: win.span, format: fmt.ms, unit: "ms",
          series: [{ name: "p50", values: lats.map((l) => l.p50) }, { name: "p95", values: lats.map((l) => l.p95) }, { name: "p99", values: lats.map((l) => l.p99) }] }),
        chart({ id: "fallback", title: "Fallback rate", sub: "Share of answers not from the personal model, " + sub, label: "Fallback rate over time", times, span: win.span, max: 1, format: (v) => fmt.pct(v, 1), unit: "pct", legend: false,
          series: [{ name: "fallback rate", values: summaries.map((sm) => numberOf(sm, "fallback_rate")) }], }),
        chart({ id: "coverage", title: "Catalogue coverage", sub: "Share of items recommended at least once, " + sub, label: "Coverage over time", times, span: win.span, format: (v) => fmt.pct(v, 1), unit: "pct",
          series: [{ name: "coverage", values: summaries.map((sm) => numberOf(sm, "coverage")), color: PALETTE[1] }] }),
        chart({ id: "pac-engine", title: "PaC by engine", sub: "Share of each list that got engaged with, " + sub, label: "PaC by engine over time", times, span: win.span, format: (v) => fmt.pct(v, 2), unit: "pct", legend: true,
          series: engines.size ? Array.from(engines).sort().map((e) => pacSeries(e, "by_engine")) : [{ name: "no lists in this window", values: times.map(() => null) }] }),
        chart({ id: "pac-version", title: "PaC by model version", sub: "Same measure per model version, " + sub, label: "PaC by model version over time", times, span: win.span, format: (v) => fmt.pct(v, 2), unit: "pct", legend: true,
          series: versions.size ? Array.from(versions).sort().map((v) => pacSeries(v, "by_model_version")) : [{ name: "no lists in this window", values: times.map(() => null) }] })));

      const endpoints = perEndpoint(total);
      if (endpoints.length) {
        parts.push(h("section", { class: "section chart-card" }, h("h3", {}, "Per endpoint"), h("p", { class: "sub" }, win.label),
          h("div", { class: "table-wrap" }, h("table", { class: "table" },
            h("thead", {}, h("tr", {}, ["Endpoint", "Requests", "Mean", "p50", "p95", "p99"].map((c) => h("th", { scope: "col" }, c)))),
            h("tbody", {}, endpoints.map((r) => h("tr", {}, h("td", {}, r.endpoint), h("td", {}, fmt.int(r.requests)), h("td", {}, fmt.ms(r.mean)), h("td", {}, fmt.ms(r.p50)), h("td", {}, fmt.ms(r.p95)), h("td", {}, fmt.ms(r.p99)))))))));
      }

      const ready = readyRes.ok ? readyRes.value : null;
      parts.push(h("section", { class: "section chart-card model-box", id: "model-in-service" }, h("h3", {}, "Model in service"),
        ready
          ? h("dl", {},
            [["Version", ready.model_version], ["Trained at", ready.trained_at], ["Loaded at", ready.loaded_at], ["Type", ready.model_type],
              ["Items", ready.items != null ? fmt.int(ready.items) : null], ["Users", ready.users != null ? fmt.int(ready.users) : null]]
              .filter(([, v]) => v !== null && v !== undefined && v !== "")
              .map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]))
          : h("p", { class: "sub" }, "Service unavailable: no model information.")));
      body.replaceChildren(...parts);
    }

    load(false);
    // Operators leave this page open: refresh quietly while it is the page on screen.
    const timer = setInterval(() => (current(token) ? !document.hidden && load(true) : clearInterval(timer)), DASHBOARD_REFRESH_MS);
  }

  // ------------------------------------------------------------------ router

  const ROUTES = {
    "for-you": viewForYou,
    discover: viewDiscover,
    popular: viewPopular,
    dashboard: viewDashboard,
  };

  function route() {
    const raw = location.hash.replace(/^#\/?/, "");
    const [path, search] = raw.split("?");
    const params = new URLSearchParams(search || "");
    const segments = path.split("/").filter(Boolean);
    const name = segments[0] || "for-you";
    const token = ++renderToken;
    document.title = "Reelpick · movie recommendations";
    let navKey = name;
    try {
      if (name === "item" && segments[1]) viewItem(token, decodeURIComponent(segments[1]));
      else if (ROUTES[name]) ROUTES[name](token, params);
      else { navKey = null; view.replaceChildren(emptyState("Page not found", "Use the menu above to find your way.")); }
    } catch (err) {
      view.replaceChildren(errorBox(new Error("This page could not be shown."), route));
      if (window.console) console.warn(err);
    }
    document.querySelectorAll(".site-nav a").forEach((a) => {
      if (a.dataset.nav === navKey) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
  }

  let lastPath = null;
  window.addEventListener("hashchange", () => {
    const path = location.hash.split("?")[0];
    route();
    if (path !== lastPath) { view.focus({ preventScroll: true }); window.scrollTo(0, 0); }
    lastPath = path;
  });
  lastPath = location.hash.split("?")[0];
  applyDetails(detailsOn());
  setUpKeyForm();
  route();
  checkReady();
})();
