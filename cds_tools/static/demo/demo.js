// The demo EHR screen: load a scenario fixture (or take a pasted request), call the CDS service,
// render its cards the way an EHR shows them, and send real feedback. Every URL is relative to the
// page, so the demo also works behind a path prefix.
import { renderMarkdown } from "./markdown.js";

const $ = (id) => document.getElementById(id);
const state = { services: [], serviceId: null, request: null };
const ACTION_VERBS = { delete: "Cancel", create: "Order", update: "Update" };
// What the clinician reads: the service's codes in words. The codes themselves, and every resource
// id, stay in the raw response panel.
const RATING_WORDS = {
  "usually-appropriate": "usually appropriate",
  "may-be-appropriate": "may be appropriate",
  "usually-not-appropriate": "usually not appropriate",
  "not-rated": "not rated by the ACR for this situation",
};
const PAMA_WORDS = {
  appropriate: "appropriate",
  "not-appropriate": "not appropriate",
  "no-criteria-apply": "no appropriate use criteria apply",
};
const SELECTION_WORDS = {
  "at-most-one": "Accept one suggestion at most, or override the card.",
  any: "Accept any of these suggestions, or override the card.",
};
const ACTION_WORDS = { delete: "cancel", create: "order" };
const ratingWords = (code) => RATING_WORDS[code] || String(code).replaceAll("-", " ");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

class HttpError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function call(url, options = {}) {
  const response = await fetch(url, {
    ...options,
    // X-CDS-Traffic marks the demo's calls: the service keeps them out of its analytics and reports.
    headers: {
      Accept: "application/json",
      "X-CDS-Traffic": "demo",
      ...(options.body ? { "Content-Type": "application/json" } : {}),
    },
  });
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { message: text };
  }
  if (!response.ok) throw new HttpError(response.status, body);
  return body;
}

function setStatus(message, kind = "") {
  const status = $("status");
  status.textContent = message;
  status.className = `status ${kind}`;
}

function explain(error) {
  if (error instanceof HttpError && (error.status === 401 || error.status === 403)) {
    return "The service requires a signed CDS Hooks JWT, which this page cannot make. Run it locally with authentication off (see docs/sandbox.md).";
  }
  if (error instanceof HttpError) {
    const details = (error.body?.details || [])
      .map((d) => (typeof d === "object" ? Object.values(d).join(": ") : String(d)))
      .join("; ");
    return `HTTP ${error.status}: ${error.body?.message || "error"}${details ? ` (${details})` : ""}`;
  }
  return String(error.message || error);
}

// ---- request side ----------------------------------------------------------------------------

async function loadServices() {
  const discovery = await call("cds-services");
  state.services = discovery.services || [];
  const select = $("service-select");
  select.replaceChildren(
    ...state.services.map((s) => el("option", { value: s.id }, `${s.hook} · ${s.id}`)),
  );
}

async function loadFixtureList() {
  const { fixtures } = await call("demo/fixtures");
  $("fixture-select").append(...fixtures.map((f) => el("option", { value: f.name }, f.title)));
  return fixtures;
}

function describeExpected(expected) {
  const cards = expected.cards || [];
  if (!cards.length) return "Expected: no card (the service stays silent).";
  return (
    "Expected: " +
    cards
      .map((c) => {
        const suggestions = (c.suggestions || [])
          .map((s) => s.map((type) => ACTION_WORDS[type] || type).join(" and "))
          .join("; ");
        return (
          `${/^[aeiou]/.test(c.indicator) ? "an" : "a"} ${c.indicator} card (${c.scenario}), ` +
          `the ordered study ${ratingWords(c.rating)}` +
          (suggestions ? `, suggesting: ${suggestions}` : "")
        );
      })
      .join("; ") +
    "."
  );
}

// `data-ready` on <body> is "true" whenever the page shows the answer to the current request (a
// screenshot or a test waits for it), "false" while it loads, "error" when loading failed.
async function busy(work) {
  document.body.dataset.ready = "false";
  try {
    await work();
    document.body.dataset.ready = "true";
  } catch (error) {
    setStatus(explain(error), "error");
    document.body.dataset.ready = "error";
  } finally {
    $("loading").hidden = true;
  }
}

async function loadFixture(name) {
  clearResults();
  if (!name) {
    $("fixture-info").hidden = true;
    $("request-json").value = "";
    return;
  }
  const fixture = await call(`demo/fixtures/${encodeURIComponent(name)}`);
  $("fixture-story").textContent = fixture.story;
  $("fixture-expected").textContent = describeExpected(fixture.expected);
  $("fixture-info").hidden = false;
  $("request-json").value = JSON.stringify(fixture.request, null, 2);
  $("service-select").value = fixture.service;
  setStatus(`Loaded “${fixture.title}”, with times rendered for now.`);
}

function followHookOfPastedRequest() {
  let hook;
  try {
    hook = JSON.parse($("request-json").value).hook;
  } catch {
    return;
  }
  const current = state.services.find((s) => s.id === $("service-select").value);
  const match = state.services.find((s) => s.hook === hook);
  if (match && current?.hook !== hook) $("service-select").value = match.id;
}

async function send() {
  let request;
  try {
    request = JSON.parse($("request-json").value);
  } catch (error) {
    setStatus(`The request is not valid JSON: ${error.message}`, "error");
    return;
  }
  clearResults();
  state.request = request;
  state.serviceId = $("service-select").value;
  setStatus(`Calling ${state.serviceId}…`);
  try {
    const response = await call(`cds-services/${encodeURIComponent(state.serviceId)}`, {
      method: "POST",
      body: JSON.stringify(request),
    });
    renderResponse(request, response);
    const count = response.cards.length;
    setStatus(
      count ? `The service returned ${count} card${count > 1 ? "s" : ""}.` : "No card: the service stays silent for this request.",
      "ok",
    );
  } catch (error) {
    setStatus(explain(error), "error");
  }
}

// ---- EHR side --------------------------------------------------------------------------------

function clearResults() {
  for (const id of ["patient-banner", "orders", "system-actions", "raw"]) $(id).hidden = true;
  $("cards").replaceChildren();
}

// The draft orders of the request sent, by reference: actions name orders, not ids.
function orderNames(request) {
  const names = new Map();
  for (const entry of request?.context?.draftOrders?.entry || []) {
    const r = entry.resource;
    if (r?.resourceType && r.id) names.set(`${r.resourceType}/${r.id}`, codingText(r.code));
  }
  return names;
}

function orderName(reference) {
  return orderNames(state.request).get(reference) || "the draft order";
}

function codingText(concept) {
  if (!concept) return "";
  if (concept.text) return concept.text;
  const coding = (concept.coding || [])[0] || {};
  const system = (coding.system || "").split("/").pop();
  return coding.display || `${system.length <= 6 ? system.toUpperCase() : system} ${coding.code || "?"}`;
}

function ageOf(birthDate) {
  const born = new Date(birthDate);
  if (Number.isNaN(born.getTime())) return null;
  return Math.floor((Date.now() - born.getTime()) / (365.25 * 24 * 3600 * 1000));
}

function renderPatient(patient) {
  if (!patient || patient.resourceType !== "Patient") return;
  const name = (patient.name || [])[0] || {};
  const fullName = [...(name.given || []), name.family].filter(Boolean).join(" ") || "Unnamed patient";
  const age = patient.birthDate ? ageOf(patient.birthDate) : null;
  const banner = $("patient-banner");
  banner.replaceChildren(
    el("strong", {}, fullName),
    el("span", {}, [patient.gender, age !== null ? `${age} y` : "age unknown"].filter(Boolean).join(" · ")),
  );
  banner.hidden = false;
}

function renderOrders(request) {
  const entries = request.context?.draftOrders?.entry || [];
  const selections = request.context?.selections || [];
  const list = $("order-list");
  list.replaceChildren(
    ...entries
      .map((e) => e.resource)
      .filter(Boolean)
      .map((r) => {
        const reference = `${r.resourceType}/${r.id}`;
        return el(
          "li",
          { dataset: { reference } },
          el("span", { class: "order-name" }, codingText(r.code) || `Unnamed ${r.resourceType}`),
          el("span", { class: "muted" }, ` · ${r.status || "status unknown"}`),
          selections.includes(reference) ? el("span", { class: "tag" }, "selected") : null,
          (r.reasonCode || []).length ? el("span", { class: "muted" }, ` · reason: ${r.reasonCode.map(codingText).join(", ")}`) : null,
        );
      }),
  );
  $("orders").hidden = !entries.length;
}

function applyActions(actions) {
  for (const action of actions) {
    if (action.type === "delete") {
      const item = [...$("order-list").children].find((li) => li.dataset.reference === action.resourceId);
      if (item) {
        item.classList.add("cancelled");
        item.append(el("span", { class: "tag cancelled-tag" }, "cancelled"));
      }
    } else if (action.type === "create" && action.resource) {
      $("order-list").append(
        el(
          "li",
          { class: "created" },
          el("span", { class: "order-name" }, codingText(action.resource.code)),
          el("span", { class: "tag created-tag" }, "new draft"),
        ),
      );
    }
  }
}

// An action in the clinician's words: the service's own description ("Cancel the draft order: MRI
// brain..."), else the verb and the order's name; resource ids and the created resource itself are in
// the raw response.
function renderAction(action) {
  const target =
    action.type === "create"
      ? codingText(action.resource?.code) || "a new order"
      : orderName(action.resourceId);
  return el(
    "li",
    { class: `action action-${action.type}` },
    action.description || `${ACTION_VERBS[action.type] || action.type} ${target}`,
    action.type === "create" ? el("span", { class: "muted" }, " (a new draft order)") : null,
  );
}

// A card with selectionBehavior "any" lets the clinician accept several suggestions; otherwise one
// answer (accept or override) settles the card.
async function sendFeedback(card, article, item, describe, controls) {
  const status = article.querySelector(".feedback-status");
  for (const control of controls) control.disabled = true;
  status.textContent = "Sending feedback…";
  try {
    const answer = await call(`cds-services/${encodeURIComponent(state.serviceId)}/feedback`, {
      method: "POST",
      body: JSON.stringify({
        feedback: [{ card: card.uuid, outcomeTimestamp: new Date().toISOString(), ...item }],
      }),
    });
    status.textContent = `Feedback sent: ${describe} (stored ${answer.stored}).`;
    status.classList.add("ok");
    return true;
  } catch (error) {
    status.textContent = `Feedback failed: ${explain(error)}`;
    status.classList.add("error");
    for (const control of controls) control.disabled = false;
    return false;
  }
}

function renderCard(card) {
  const article = el("article", {
    class: `card indicator-${card.indicator}`,
    dataset: { uuid: card.uuid, scenario: card.source?.topic?.code || "" },
  });
  const source = card.source || {};
  const sourceLink = /^https?:\/\//i.test(source.url || "")
    ? el("a", { href: source.url, target: "_blank", rel: "noopener noreferrer" }, source.label)
    : el("span", {}, source.label);
  const extension = card.extension || {};
  const ordered = orderName(extension["pdph-imaging.draft-order"]);
  const rating = extension["pdph-imaging.rating"];
  const facts = [
    rating && `ACR rating of ${ordered === "the draft order" ? "the ordered study" : ordered}: ${ratingWords(rating)}`,
    extension["pdph-imaging.hours-since-puncture"] !== undefined &&
      `${extension["pdph-imaging.hours-since-puncture"]} h since the dural puncture`,
  ].filter(Boolean);

  article.append(
    el(
      "header",
      {},
      el("span", { class: "badge" }, card.indicator),
      el("h3", { class: "summary" }, card.summary),
    ),
    facts.length ? el("p", { class: "facts muted" }, facts.join(" · ")) : null,
    card.detail ? el("div", { class: "detail" }, renderMarkdown(card.detail)) : null,
    el(
      "p",
      { class: "source" },
      "Source: ",
      sourceLink,
      source.topic?.display ? el("span", { class: "muted" }, ` · ${source.topic.display}`) : null,
    ),
    ...(card.links || [])
      .filter((link) => link.type === "absolute" && /^https?:\/\//.test(link.url))
      .map((link) =>
        el("p", { class: "link" }, el("a", { href: link.url, target: "_blank", rel: "noopener noreferrer" }, link.label)),
      ),
  );

  const suggestions = card.suggestions || [];
  if (suggestions.length) {
    const box = el("div", { class: "suggestions" }, el("h4", {}, "Suggestions"));
    for (const suggestion of suggestions) {
      box.append(
        el(
          "div",
          { class: "suggestion", dataset: { uuid: suggestion.uuid } },
          el(
            "button",
            {
              type: "button",
              class: "accept",
              dataset: { suggestion: suggestion.uuid },
              onclick: async (event) => {
                const button = event.currentTarget;
                const controls =
                  card.selectionBehavior === "any"
                    ? [button, ...article.querySelectorAll(".override select, .override input, .override button")]
                    : [...article.querySelectorAll("button, select, input")];
                const ok = await sendFeedback(
                  card,
                  article,
                  { outcome: "accepted", acceptedSuggestions: [{ id: suggestion.uuid }] },
                  `accepted “${suggestion.label}”`,
                  controls,
                );
                if (ok) {
                  applyActions(suggestion.actions || []);
                  button.closest(".suggestion").classList.add("accepted");
                }
              },
            },
            suggestion.isRecommended ? "★ " : "",
            suggestion.label,
          ),
          el("ul", { class: "actions" }, (suggestion.actions || []).map(renderAction)),
        ),
      );
    }
    if (card.selectionBehavior) {
      const words = SELECTION_WORDS[card.selectionBehavior] || `Selection: ${card.selectionBehavior.replaceAll("-", " ")}.`;
      box.append(el("p", { class: "selection muted" }, words));
    }
    article.append(box);
  }

  const reasons = card.overrideReasons || [];
  if (reasons.length) {
    // No reason is preselected: only a reason the clinician chose may be sent.
    const select = el(
      "select",
      { class: "override-reason", "aria-label": "Override reason" },
      [
        el("option", { value: "", selected: "", disabled: "" }, "Choose a reason…"),
        ...reasons.map((r, i) => el("option", { value: String(i) }, r.display || r.code)),
      ],
    );
    const comment = el("input", { type: "text", class: "override-comment", placeholder: "Comment (optional)", "aria-label": "Comment" });
    article.append(
      el(
        "div",
        { class: "override" },
        el("h4", {}, "Override"),
        select,
        comment,
        el(
          "button",
          {
            type: "button",
            class: "override-send",
            disabled: "",
            onclick: () => {
              if (select.value === "") return;
              const reason = reasons[Number(select.value)];
              const overrideReason = { reason };
              if (comment.value.trim()) overrideReason.userComment = comment.value.trim();
              sendFeedback(
                card,
                article,
                { outcome: "overridden", overrideReason },
                `overridden, “${reason.display || reason.code}”`,
                [...article.querySelectorAll("button, select, input")],
              );
            },
          },
          "Override and send feedback",
        ),
      ),
    );
  }
  const send = article.querySelector("button.override-send");
  article.querySelector("select.override-reason")?.addEventListener("change", (e) => {
    if (send) send.disabled = e.target.value === "";
  });
  article.append(el("p", { class: "feedback-status", role: "status" }));
  return article;
}

function renderSystemActions(response) {
  const actions = response.systemActions || response.extension?.systemActions || [];
  $("system-action-list").replaceChildren(
    ...actions.map((action) => {
      const resource = action.resource || {};
      const rating = (resource.extension || [])
        .filter((e) => e.url === "http://fhir.org/argonaut/Extension/pama-rating")
        .map((e) => (e.valueCodeableConcept?.coding || [])[0]?.code)[0];
      const name = codingText(resource.code) || orderName(`${resource.resourceType}/${resource.id}`);
      return el(
        "li",
        { dataset: { rating: rating || "" } },
        el("strong", {}, name),
        rating
          ? el("span", {}, `: appropriateness rating ${PAMA_WORDS[rating] || rating.replaceAll("-", " ")} (PAMA)`)
          : el("span", {}, ": recorded on the order"),
      );
    }),
  );
  $("system-actions").hidden = !actions.length;
}

function renderResponse(request, response) {
  renderPatient(request.prefetch?.patient);
  renderOrders(request);
  $("cards").replaceChildren(
    ...(response.cards.length
      ? response.cards.map(renderCard)
      : [el("p", { class: "no-card" }, "No card: the service stays silent for this request.")]),
  );
  renderSystemActions(response);
  $("raw-json").textContent = JSON.stringify(response, null, 2);
  $("raw").hidden = false;
}

// ---- start -----------------------------------------------------------------------------------

async function start() {
  // Choosing a scenario loads it and sends it, as an EHR would call the service.
  $("fixture-select").addEventListener("change", (e) =>
    busy(async () => {
      await loadFixture(e.target.value);
      if (e.target.value) await send();
    }),
  );
  $("request-json").addEventListener("input", followHookOfPastedRequest);
  $("send").addEventListener("click", () => busy(send));
  await busy(async () => {
    await loadServices();
    const fixtures = await loadFixtureList();
    // A scenario is always chosen (the one in ?fixture=, else the first) and sent at once.
    const wanted = new URLSearchParams(window.location.search).get("fixture");
    const chosen = fixtures.find((f) => f.name === wanted) || fixtures[0];
    if (chosen) {
      $("fixture-select").value = chosen.name;
      await loadFixture(chosen.name);
      await send();
    } else {
      setStatus("No scenario available: paste a request.");
    }
  });
}

start();
