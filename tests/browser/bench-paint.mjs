// Loads the console LOADS times per view in a fresh page (signed in through
// sessionStorage, as after a sign-in) and reports the median and worst first
// paint, first contentful paint, and time until the view shows its data.
// Fails when the median first paint of any view exceeds 1,000 ms.
import puppeteer from 'puppeteer-core';

const BASE = process.env.OMS_URL, TOKEN = process.env.OMS_TOKEN;
const LOADS = +(process.env.LOADS || 7);
// The baseline, measured in the same run: the console's own index.html as a
// static page (no script runs), so the figure shows what the console adds to
// the browser's own cost of painting a page on this machine.
const VIEWS = [
  ['baseline', null, null],
  ['browse', '#/browse/object-types?branch=bench', 'table.list tbody tr'],
  ['graph', '#/graph?branch=bench', '.graph svg .node'],
  ['search', '#/search?branch=bench&q=order', '.results li'],
];
const browser = await puppeteer.launch({ executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
let fail = false, base = null;
console.log(`console page load on ${process.env.TYPES} object types, ${LOADS} loads per view (ms)`);
console.log('view     first-paint (median/max)  first-contentful-paint  data shown');
for (const [name, hash, sel] of VIEWS) {
  const fp = [], fcp = [], data = [];
  for (let i = 0; i < LOADS; i++) {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    await page.evaluateOnNewDocument((t) => sessionStorage.setItem('oms.token', t), TOKEN);
    if (!hash) {
      await page.setJavaScriptEnabled(false);
      await page.goto(BASE + '/ui/', { waitUntil: 'load' });
      await page.waitForFunction(() => performance.getEntriesByType('paint').length > 0, { timeout: 30000 }).catch(() => {});
    } else {
      await page.goto(BASE + '/ui/' + hash, { waitUntil: 'load' });
      await page.waitForSelector(sel, { timeout: 30000 });
    }
    const shown = await page.evaluate(() => performance.now());
    const paints = await page.evaluate(() => Object.fromEntries(performance.getEntriesByType('paint').map((e) => [e.name, e.startTime])));
    fp.push(paints['first-paint'] ?? NaN); fcp.push(paints['first-contentful-paint'] ?? NaN); data.push(shown);
    await page.close();
  }
  const f = (xs) => `${med(xs).toFixed(0)}/${Math.max(...xs).toFixed(0)}`;
  console.log(`${name.padEnd(8)} ${f(fp).padEnd(25)} ${f(fcp).padEnd(23)} ${f(data)}`);
  if (name === 'baseline') base = med(fp);
  else {
    console.log(`         first paint / baseline: ${(med(fp) / base).toFixed(2)}`);
    if (!(med(fp) <= 1000)) fail = true;
  }
}
await browser.close();
console.log(`console_paint: first paint ≤ 1000 ms: ${fail ? 'FAIL' : 'ok'}`);
process.exit(fail ? 1 : 0);
