// Drives headless Chromium through the SMART app the way a clinician would after following a card's
// link, and prints what the page showed as one JSON object on stdout. The Python test decides
// what is right; this script only looks, clicks and reports.
//
// Usage: node drive_app.mjs '{"chromium": "/usr/bin/chromium", "launchUrl": "...", "screenshots": null}'
import { chromium } from 'playwright-core';

const options = JSON.parse(process.argv[2]);
const WAIT = 60_000; // generous: the machine is shared; nothing here measures speed

async function seriesSeen(page) {
  return page.evaluate(() => {
    const app = window.cytopeniaApp;
    return app.view.series.map((series) => {
      const figure = document.querySelector(`figure[data-analyte="${series.analyte}"]`);
      const chart = app.charts[series.analyte];
      return {
        analyte: series.analyte,
        notRecordedText: figure.querySelector('.not-recorded')?.textContent ?? null,
        chartPoints: chart ? chart.data[1].filter((v) => v !== null) : [],
        chartPreliminary: chart ? chart.data[2].filter((v) => v !== null) : [],
        chartNadir: chart ? chart.data[3].filter((v) => v !== null) : [],
        chartLowerLimit: chart ? [...new Set(chart.data[4])] : [],
        bandLabels: [...figure.querySelectorAll('.band-label')].map((e) => e.textContent),
        bandList: [...figure.querySelectorAll('.band-list li')].map((e) => e.textContent),
        nadirText: figure.querySelector('.nadir')?.textContent ?? null,
        limitText: figure.querySelector('.lln')?.textContent ?? null,
        rows: [...figure.querySelectorAll('tr.point')].map((row) => [...row.cells].map((c) => c.textContent)),
      };
    });
  });
}

async function hoverNadir(page, analyte) {
  await page.locator(`figure[data-analyte="${analyte}"] .chart`).scrollIntoViewIfNeeded();
  const target = await page.evaluate((name) => {
    const chart = window.cytopeniaApp.charts[name];
    const values = chart.data[3];
    const index = values.findIndex((v) => v !== null);
    const box = chart.over.getBoundingClientRect();
    return {
      x: box.left + chart.valToPos(chart.data[0][index], 'x'),
      y: box.top + chart.valToPos(values[index], 'y'),
    };
  }, analyte);
  await page.mouse.move(target.x, target.y);
  await page.waitForFunction(
    (name) => document.querySelector(`figure[data-analyte="${name}"] .hover`).textContent.includes('; source '),
    analyte,
    { timeout: WAIT }
  );
  return page.textContent(`figure[data-analyte="${analyte}"] .hover`);
}

async function answer(page, key, value) {
  const before = await page.evaluate(() => window.cytopeniaApp.evaluations);
  await page.selectOption(`#answer-${key}`, value);
  await page.waitForFunction((n) => window.cytopeniaApp.evaluations > n, before, { timeout: WAIT });
  return page.evaluate(() => ({
    text: document.getElementById('mascc-score').textContent,
    view: window.cytopeniaApp.view.mascc,
  }));
}

const browser = await chromium.launch({ executablePath: options.chromium, args: ['--no-sandbox'] });
const report = { console: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('console', (message) => report.console.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => report.console.push(`pageerror: ${error.message}`));
  await page.goto(options.launchUrl);
  await page.waitForSelector('body[data-ready]', { timeout: WAIT });
  report.ready = await page.getAttribute('body', 'data-ready');
  report.status = await page.textContent('#status');
  report.url = page.url();
  if (report.ready === 'true') {
    report.focus = await page.getAttribute('body', 'data-focus');
    report.context = await page.textContent('#context');
    report.series = await seriesSeen(page);
    report.hover = await hoverNadir(page, options.hoverAnalyte);
    if (options.screenshots) {
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: `${options.screenshots}/smart-app-1280x800.png` });
    }
    report.firstHour = await page.textContent('#first-hour');
    report.cisne = await page.textContent('#cisne');
    report.masccBefore = await page.textContent('#mascc-score');
    report.mild = [await answer(page, 'burden_of_illness', 'none or mild'), await answer(page, 'dehydration', 'false')];
    if (options.screenshots) {
      await page.evaluate(() => document.getElementById('mascc').scrollIntoView());
      await page.screenshot({ path: `${options.screenshots}/smart-app-1280x800-mascc.png` });
    }
    report.severe = [await answer(page, 'burden_of_illness', 'severe'), await answer(page, 'dehydration', 'true')];
    report.caveats = await page.textContent('#mascc-caveats');
    await page.setViewportSize({ width: 375, height: 667 });
    await page.waitForFunction(() => document.querySelector('.chart canvas').clientWidth <= 375, null, { timeout: WAIT });
    report.phoneChartWidth = await page.evaluate(() => document.querySelector('.chart canvas').clientWidth);
    report.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    if (options.screenshots) {
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: `${options.screenshots}/smart-app-375x667.png` });
      await page.evaluate(() => document.getElementById('mascc-score').scrollIntoView({ block: 'end' }));
      await page.screenshot({ path: `${options.screenshots}/smart-app-375x667-mascc.png` });
    }
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + '\n');
