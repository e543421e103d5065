// The app page: reads the record through the SMART client, asks the service to run the rules on it,
// and draws what comes back. No grade, score or threshold is computed here: the service's answer
// (POST api/patient-view) carries every series, band, nadir, limit, score and checklist item.
'use strict';

const app = (window.cytopeniaApp = { view: null, charts: {}, answers: {}, evaluations: 0 });
const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'text') node.textContent = value;
    else if (name === 'top') node.style.top = value; // CSSOM, which the page's CSP allows (style attributes it does not)
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) node.append(child);
  return node;
}

function utc(iso) {
  return iso ? iso.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC') : 'time not recorded';
}

function status(text) {
  $('status').textContent = text;
}

// Each query value percent-encoded: `code=http://loinc.org|...` must survive proxies.
function encodedQuery(template, patientId) {
  const [path, query] = template.replace('{patient}', patientId).split('?');
  const params = new URLSearchParams(query);
  return path + '?' + [...params].map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

async function readRecord(client, config) {
  const patient = await client.patient.read();
  const resources = [];
  const notRead = [];
  for (const read of config.reads) {
    try {
      const found = await client.request(encodedQuery(read.query, client.patient.id), { pageLimit: 5, flat: true });
      resources.push(...found.filter((r) => r && r.resourceType));
    } catch (error) {
      notRead.push(read.resourceType);
    }
  }
  return { patient, resources, notRead };
}

async function evaluate() {
  const body = { ...app.request, answers: app.answers };
  const response = await fetch('api/patient-view', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${app.token}` },
    body: JSON.stringify(body),
  });
  const document_ = await response.json();
  if (!response.ok) {
    const text = document_.issue?.[0]?.details?.text || `HTTP ${response.status}`;
    throw new Error(text);
  }
  app.view = document_;
  render(document_);
  app.evaluations += 1;
}

// ---- Trend ------------------------------------------------------------------------------------

const GRADE_FILL = { 1: 'rgba(0,0,0,0.04)', 2: 'rgba(0,0,0,0.08)', 3: 'rgba(0,0,0,0.13)', 4: 'rgba(0,0,0,0.19)' };

function chartWidth(container) {
  return Math.max(260, Math.min(container.clientWidth || 320, 900));
}

function chartData(series) {
  const times = [...new Set(series.points.map((p) => Date.parse(p.time) / 1000))].sort((a, b) => a - b);
  const at = (status) => times.map((t) => {
    const point = series.points.find((p) => Date.parse(p.time) / 1000 === t && (p.status === 'preliminary') === status);
    return point ? point.value : null;
  });
  const nadirTime = series.nadir ? Date.parse(series.nadir.time) / 1000 : null;
  const lln = series.lowerLimit && series.lowerLimit.value !== null ? series.lowerLimit.value : null;
  return [
    times,
    at(false),
    at(true),
    times.map((t) => (t === nadirTime ? series.nadir.value : null)),
    times.map(() => lln),
  ];
}

function pointAt(series, seconds) {
  return series.points.filter((p) => Date.parse(p.time) / 1000 === seconds);
}

function bandLabels(u, series, layer) {
  layer.replaceChildren();
  for (const band of series.bands) {
    const top = u.valToPos(Math.min(band.to, u.scales.y.max), 'y');
    const bottom = u.valToPos(Math.max(band.from, u.scales.y.min), 'y');
    if (bottom - top < 11) continue;
    layer.append(element('span', {
      class: 'band-label', 'data-grade': band.grade, top: `${(top + bottom) / 2 - 7}px`, text: band.label,
    }));
  }
}

function drawChart(series, holder, hover) {
  const data = chartData(series);
  const values = series.points.map((p) => p.value);
  const lln = data[4][0];
  const top = Math.max(...values, lln ?? 0, ...series.bands.map((b) => b.to)) * 1.12;
  const layer = element('div', { class: 'band-labels', 'aria-hidden': 'true' });
  const options = {
    width: chartWidth(holder),
    height: 220,
    scales: { x: { time: true }, y: { range: [0, top] } },
    legend: { show: false },
    series: [
      {},
      { label: series.label, stroke: '#1f4e79', width: 2, spanGaps: true, points: { show: true, size: 7, fill: '#1f4e79' } },
      { label: 'preliminary', stroke: '#1f4e79', width: 0, points: { show: true, size: 9, fill: '#ffffff', width: 2 } },
      { label: 'nadir', stroke: '#000000', width: 0, points: { show: true, size: 11, fill: '#1f4e79', width: 2 } },
      { label: 'lower limit', stroke: '#555555', width: 1.5, dash: [6, 4], points: { show: false } },
    ],
    axes: [{}, { label: series.unit, size: 50 }],
    hooks: {
      drawClear: [(u) => {
        const { ctx } = u;
        ctx.save();
        for (const band of series.bands) {
          const y0 = u.valToPos(Math.min(band.to, top), 'y', true);
          const y1 = u.valToPos(band.from, 'y', true);
          ctx.fillStyle = GRADE_FILL[band.grade] || GRADE_FILL[1];
          ctx.fillRect(u.bbox.left, y0, u.bbox.width, y1 - y0);
        }
        ctx.restore();
      }],
      draw: [(u) => { bandLabels(u, series, layer); nadirMarker(u); }],
      setCursor: [(u) => {
        const index = u.cursor.idx;
        if (index === null || index === undefined) return;
        hover.textContent = pointAt(series, u.data[0][index]).map(pointText).join(' | ');
      }],
    },
  };
  const chart = new uPlot(options, data, holder);
  chart.over.append(layer);
  return chart;
}

// ▼ above the nadir: a shape, not a colour.
function nadirMarker(u) {
  const index = u.data[3].findIndex((v) => v !== null);
  if (index < 0) return;
  const x = u.valToPos(u.data[0][index], 'x', true);
  const y = u.valToPos(u.data[3][index], 'y', true);
  const size = 7 * devicePixelRatio;
  const { ctx } = u;
  ctx.save();
  ctx.fillStyle = '#000000';
  ctx.beginPath();
  ctx.moveTo(x - size, y - 3 * size);
  ctx.lineTo(x + size, y - 3 * size);
  ctx.lineTo(x, y - size);
  ctx.closePath();
  ctx.fill();
  ctx.restore();
}

function pointText(p) {
  const grade = p.gradeLabel ? `, ${p.gradeLabel}` : '';
  const how = p.derivation ? `, ${p.derivation}` : '';
  return `${utc(p.time)}: ${p.text} (${p.status}${grade}${how}); source ${p.sources.join(', ')}`;
}

function valueTable(series) {
  const nadirTime = series.nadir ? series.nadir.time : null;
  const rows = series.points.map((p) => element('tr', { class: 'point', 'data-status': p.status },
    element('td', { text: utc(p.time) }),
    element('td', { class: 'value', text: p.text }),
    element('td', { text: p.gradeLabel || 'not graded' }),
    element('td', { text: [p.status, p.time === nadirTime ? 'nadir' : null].filter(Boolean).join(', ') }),
    element('td', { class: 'source', text: p.sources.join(', ') + (p.derivation ? ` (${p.derivation})` : '') })));
  return element('details', { class: 'values' },
    element('summary', { text: `Values (${series.points.length})` }),
    element('table', {},
      element('thead', {}, element('tr', {}, ...['Time', 'Value', 'CTCAE grade', 'Status', 'Source'].map((h) => element('th', { scope: 'col', text: h })))),
      element('tbody', {}, rows)));
}

function renderTrend(view) {
  const container = $('charts');
  for (const chart of Object.values(app.charts)) chart.destroy();
  app.charts = {};
  container.replaceChildren();
  for (const series of view.series) {
    const figure = element('figure', { class: 'series', 'data-analyte': series.analyte });
    figure.append(element('figcaption', {}, element('strong', { text: `${series.label}` }), ` (${series.name}, ${series.unit})`));
    container.append(figure);
    if (!series.recorded) {
      figure.append(element('p', { class: 'not-recorded', text: 'Not recorded in the data read.' }));
      continue;
    }
    const facts = [];
    if (series.nadir) {
      const preliminary = series.nadir.status === 'preliminary' ? ' (preliminary result)' : '';
      facts.push(element('span', { class: 'nadir', text: `▼ Nadir ${series.nadir.text} ${series.unit} on ${utc(series.nadir.time)}${preliminary}` }));
    }
    const limit = series.lowerLimit;
    facts.push(element('span', { class: 'lln', text: limit && limit.value !== null ? `Lower limit ${limit.value} ${series.unit} (${limit.basis})` : `No lower limit (${limit ? limit.basis : 'no result'})` }));
    figure.append(element('p', { class: 'facts' }, ...facts.flatMap((f, i) => (i ? [' · ', f] : [f]))));
    const holder = element('div', { class: 'chart' });
    const hover = element('p', { class: 'hover', 'aria-live': 'polite', text: 'Hover or tap a point to see its value and where it came from.' });
    figure.append(holder, hover);
    app.charts[series.analyte] = drawChart(series, holder, hover);
    figure.append(element('ul', { class: 'band-list' }, series.bands.map((b) => element('li', { 'data-grade': b.grade, text: b.label }))));
    figure.append(valueTable(series));
  }
}

// ---- MASCC, CISNE, first hour -----------------------------------------------------------------

const CHOICES = {
  burden_of_illness: [['', 'not answered'], ['none or mild', 'none or mild'], ['moderate', 'moderate'], ['severe', 'severe']],
  dehydration: [['', 'not answered'], ['false', 'no'], ['true', 'yes: dehydration needing IV fluids']],
};

function answerControl(item) {
  const select = element('select', { id: `answer-${item.key}`, name: item.key, 'aria-label': item.label });
  const current = item.key === 'dehydration' ? app.answers.dehydrationNeedingIvFluids : app.answers.burdenOfIllness;
  for (const [value, text] of CHOICES[item.key]) {
    select.append(element('option', { value, text, selected: String(current ?? '') === value }));
  }
  select.addEventListener('change', async () => {
    if (item.key === 'dehydration') app.answers.dehydrationNeedingIvFluids = select.value === '' ? null : select.value === 'true';
    else app.answers.burdenOfIllness = select.value || null;
    try { await evaluate(); } catch (error) { status(`The service could not score: ${error.message}`); }
  });
  return select;
}

function scoreText(score) {
  if (score.notApplicable) return `${score.name} not applicable: ${score.notApplicable.replace(/\.$/, '')}.`;
  const value = score.score !== null ? `${score.name} score ${score.score}` : `${score.name} range ${score.low}–${score.high}`;
  return `${value}: ${score.riskGroup || 'risk group not decided by the items known so far'}.`;
}

function renderMascc(mascc) {
  const body = $('mascc-items').tBodies[0];
  body.replaceChildren();
  for (const item of mascc.items) {
    const points = item.points === null ? `unknown (0–${item.maxPoints})` : `${item.points} of ${item.maxPoints}`;
    const cell = element('td', { class: 'points' }, element('span', { class: 'points-value', text: points }));
    if (item.key) cell.append(element('br'), answerControl(item));
    body.append(element('tr', { 'data-key': item.key }, element('th', { scope: 'row', text: item.label }), cell, element('td', { text: item.evidence })));
  }
  $('mascc-score').textContent = `${scoreText(mascc)} Low risk from ${mascc.cutOff.lowRiskFrom} points.`;
  $('mascc-score').dataset.score = mascc.score ?? '';
  $('mascc-score').dataset.riskGroup = mascc.riskGroup ?? '';
  $('mascc-caveats').replaceChildren(...mascc.caveats.map((c) => element('li', { class: c.applies ? 'applies' : null },
    c.applies ? element('strong', { text: 'Applies to this patient: ' }) : '', c.text, element('small', { text: ` (${c.source})` }))));
}

function renderCisne(cisne) {
  const holder = $('cisne');
  if (!cisne) {
    holder.replaceChildren(element('p', { text: 'Not shown: CISNE is for clinically stable patients with a solid tumour, and the record does not show one (or shows a haematological malignancy, hypotension or shock).' }));
    return;
  }
  holder.replaceChildren(
    element('ul', {}, cisne.items.map((i) => element('li', { text: `${i.label}: ${i.points === null ? `unknown (0–${i.maxPoints})` : i.points} (${i.evidence})` }))),
    element('p', { class: 'score', text: scoreText(cisne) }));
}

function renderFirstHour(first) {
  const since = first.hoursSinceOnset === null ? '' : ` ${first.hoursSinceOnset} h since fever onset.`;
  $('fever').textContent = `Fever: ${first.feverEvidence}.${since}`;
  $('checklist').replaceChildren(...first.items.map((i) => element('li', { 'data-status': i.status },
    element('strong', { text: `${i.status}: ` }), `${i.label}: ${i.evidence}.`, element('small', { text: ` (${i.source})` }))));
}

function render(view) {
  status(`Evaluated as of ${utc(view.asOf)}. Suggestions only: the clinician decides.`);
  renderTrend(view);
  renderMascc(view.mascc);
  renderCisne(view.cisne);
  renderFirstHour(view.firstHour);
  const issues = view.issues.map((i) => element('li', { text: `${i.source}: ${i.problem}` }));
  const notRead = view.notRead.map((kind) => element('li', { text: `${kind}: could not be read (treated as not recorded, never as absent)` }));
  $('issues').replaceChildren(...notRead, ...issues);
  if (!issues.length && !notRead.length) $('issues').append(element('li', { text: 'None.' }));
  document.body.dataset.ready = 'true';
}

function showContext(raw) {
  if (!raw) return;
  let context;
  try { context = JSON.parse(raw); } catch (error) { return; }
  if (!context || typeof context.finding !== 'string') return;
  $('context').hidden = false;
  $('context').textContent = `Opened from the ${context.finding.replace(/_/g, ' ')} card.`;
  const target = context.finding === 'febrile_neutropenia' ? 'first-hour' : 'trend';
  document.body.dataset.focus = target;
  $(target).scrollIntoView();
}

window.addEventListener('resize', () => {
  for (const chart of Object.values(app.charts)) {
    chart.setSize({ width: chartWidth(chart.root.parentElement), height: 220 });
  }
});

(async () => {
  try {
    const client = await FHIR.oauth2.ready();
    const config = await (await fetch('config.json')).json();
    app.token = client.state.tokenResponse.access_token;
    app.request = await readRecord(client, config);
    const p = app.request.patient;
    const name = (p.name && p.name[0]) ? [...(p.name[0].given || []), p.name[0].family].filter(Boolean).join(' ') : 'name not recorded';
    $('patient').textContent = `${name} · born ${p.birthDate || 'date not recorded'} · ${p.gender || 'sex not recorded'}`;
    await evaluate();
    showContext(client.state.tokenResponse.appContext);
  } catch (error) {
    status(`Could not show the review: ${error.message}`);
    document.body.dataset.ready = 'error';
  }
})();
