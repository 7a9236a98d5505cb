// Worklane's service worker, served as /sw.js (app/core/offline.py).
//
// - Static files with a version in their URL (?v=…, which never changes what it names) come
//   from its cache once fetched: no round trip on the next page, back and forward included.
// - Pages (navigations) always come from the server while it answers, so an edit is seen at
//   once. A page a signed-in person opened is kept, and shown, marked as a copy, when the
//   server cannot be reached (offline).
// - Pages are kept per session: the server names the session in a header of each page
//   (``Worklane-Offline: tag=…; max-age=…``, an HMAC of the session id, not the id). A page of
//   another session, or a page without one (signed out: the logout ends on the sign-in page),
//   drops every page kept before; so does the end of the session's idle time.
// - Any change sent (a request other than GET or HEAD) drops the session's pages, so a copy
//   shown offline is never older than a change its person made.
"use strict";

const STATIC_CACHE = "worklane-static-1";
const PAGE_CACHE_PREFIX = "worklane-pages-";
const META_CACHE = "worklane-meta";
const META_URL = "/__worklane-offline-session";

/** The pages being dropped after a change: a page fetched meanwhile is kept only after that. */
let dropping = Promise.resolve();

self.addEventListener("install", () => self.skipWaiting());

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(
        names
          .filter((name) => name.startsWith("worklane-static-") && name !== STATIC_CACHE)
          .map((name) => caches.delete(name)),
      );
      await self.clients.claim();
    })(),
  );
});

/** The session a page's response names: {tag, until} or null (no header: signed out). */
function sessionOf(response) {
  const header = response.headers.get("Worklane-Offline");
  if (!header) return null;
  const tag = /(?:^|;\s*)tag=([A-Za-z0-9_-]+)/.exec(header);
  const age = /(?:^|;\s*)max-age=(\d+)/.exec(header);
  if (!tag || !age) return null;
  return { tag: tag[1], until: Date.now() + Number(age[1]) * 1000 };
}

async function currentSession() {
  const meta = await caches.open(META_CACHE);
  const stored = await meta.match(META_URL);
  if (!stored) return null;
  const session = await stored.json();
  if (session.until < Date.now()) {
    await dropPages(null);
    return null;
  }
  return session;
}

async function rememberSession(session) {
  const meta = await caches.open(META_CACHE);
  if (session === null) {
    await meta.delete(META_URL);
  } else {
    await meta.put(META_URL, new Response(JSON.stringify(session), { headers: { "Content-Type": "application/json" } }));
  }
}

/** Drop every session's pages but ``keepTag``'s (null: all of them). */
async function dropPages(keepTag) {
  const names = await caches.keys();
  await Promise.all(
    names
      .filter((name) => name.startsWith(PAGE_CACHE_PREFIX) && name !== PAGE_CACHE_PREFIX + keepTag)
      .map((name) => caches.delete(name)),
  );
  if (keepTag === null) await rememberSession(null);
}

async function staticFile(request) {
  const cache = await caches.open(STATIC_CACHE);
  const kept = await cache.match(request);
  if (kept) return kept;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

async function page(request) {
  let response;
  try {
    response = await fetch(request);
  } catch (error) {
    return offlineCopy(request);
  }
  await dropping;
  const session = sessionOf(response);
  const type = response.headers.get("Content-Type") || "";
  if (response.type === "opaqueredirect" || !type.startsWith("text/html")) return response;
  if (session === null) {
    await dropPages(null);
  } else {
    await dropPages(session.tag);
    await rememberSession(session);
    if (response.ok) {
      const cache = await caches.open(PAGE_CACHE_PREFIX + session.tag);
      await cache.put(request, response.clone());
    }
  }
  return response;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** A moment as the server writes one (app/core/dates.py's ``|when``: "27 Nov 2026 14:05 UTC"),
 * which app.js then shows relative, with the exact time in the person's zone. */
function timeElement(moment) {
  const two = (number) => String(number).padStart(2, "0");
  const utc =
    `${moment.getUTCDate()} ${MONTHS[moment.getUTCMonth()]} ${moment.getUTCFullYear()} ` +
    `${two(moment.getUTCHours())}:${two(moment.getUTCMinutes())} UTC`;
  const iso = `${moment.toISOString().slice(0, 19)}Z`;
  return `<time datetime="${iso}" data-relative title="${utc}">${utc}</time>`;
}

async function offlineCopy(request) {
  const session = await currentSession();
  const kept = session && (await (await caches.open(PAGE_CACHE_PREFIX + session.tag)).match(request));
  if (!kept) {
    return new Response(
      "<!doctype html><html lang=en><meta charset=utf-8><title>Offline · Worklane</title>" +
        "<h1>You are offline</h1><p>This page was not opened on this device since you signed in, " +
        "so there is no copy of it here. It will load once you are back online.</p>",
      { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } },
    );
  }
  const when = new Date(kept.headers.get("Date") || Date.now());
  const banner =
    '<div class="offline-copy" role="status">You are offline: this is the page as it was ' +
    `${timeElement(when)}.</div>`;
  const html = (await kept.text()).replace(/<body([^>]*)>/, (body) => body + banner);
  const headers = new Headers(kept.headers);
  headers.delete("Content-Length");
  headers.delete("Content-Encoding");
  return new Response(html, { status: 200, headers });
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method !== "GET" && request.method !== "HEAD") {
    dropping = dropping.then(() => dropPages(null)).catch(() => {});
    event.waitUntil(dropping);
    return; // sent as it is
  }
  if (url.pathname.startsWith("/static/") && url.searchParams.has("v")) {
    event.respondWith(staticFile(request));
  } else if (request.mode === "navigate") {
    event.respondWith(page(request));
  }
});
