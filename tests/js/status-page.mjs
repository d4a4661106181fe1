// The status page in a real browser (Debian's Chromium, driven by playwright-core): it loads,
// its numbers move while events arrive, it ends up showing the same totals as /status, it works
// from the keyboard, and it fits a phone screen. Saves screenshots for people to look at.
// Usage: node status-page.mjs BASE_URL SCREENSHOT.png EXPECTED_EVENTS
import { chromium } from "playwright-core";

const [base, screenshot, expectedText] = process.argv.slice(2);
const expected = Number(expectedText);
const fail = (message) => { console.error(`status page: FAILED: ${message}`); process.exit(1); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const requests = [];
  page.on("request", (request) => requests.push(request.url()));
  await page.goto(`${base}/`);
  const archived = async () => Number((await page.textContent('[data-field="events_archived"]')).replace(/,/g, ""));

  // The numbers move: two different totals seen on the page while events arrive.
  await page.waitForFunction(() => Number(document.body.dataset.polls) >= 1, null, { timeout: 20000 });
  const first = await archived();
  await page.waitForFunction((before) => {
    const now = Number(document.querySelector('[data-field="events_archived"]').textContent.replace(/,/g, ""));
    return now > before;
  }, first, { timeout: 30000 });
  console.log(`status page: events archived moved from ${first} to ${await archived()}`);

  // Once everything is archived, the page shows what /status says.
  await page.waitForFunction((n) => document.querySelector('[data-field="events_archived"]').textContent.replace(/,/g, "") === String(n),
    expected, { timeout: 60000 });
  const polls = Number(await page.getAttribute("body", "data-polls"));
  await page.waitForFunction((p) => Number(document.body.dataset.polls) > p, polls, { timeout: 10000 });
  const status = await (await fetch(`${base}/status`)).json();
  const shown = await page.evaluate(() => {
    const text = (s) => document.querySelector(s).textContent.replace(/,/g, "");
    const cells = (attr) => Object.fromEntries([...document.querySelectorAll(`td[data-${attr}]`)]
      .map((td) => [td.dataset[attr], Number(td.textContent.replace(/,/g, ""))]));
    return {
      events_archived: Number(text('[data-field="events_archived"]')),
      canaries: Number(text('[data-field="canaries"]')),
      rejects: Number(text('[data-field="rejects"]')),
      reconnects: Number(text('[data-field="reconnects"]')),
      types: cells("type"),
      wikis: cells("wiki"),
      files: document.querySelectorAll("#files tr").length,
      health: document.querySelector("#health").textContent,
    };
  });
  const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
  const want = {
    events_archived: status.events_archived,
    canaries: status.canaries,
    rejects: sum(status.rejects),
    reconnects: sum(status.reconnects),
    types: status.events_archived_by_type,
    wikis: Object.fromEntries(status.top_wikis.map((w) => [w.wiki, w.events])),
    files: status.completed_files.length,
    health: status.healthy ? "Healthy" : `Unhealthy: ${status.health}`,
  };
  if (JSON.stringify(shown) !== JSON.stringify(want)) {
    fail(`page shows ${JSON.stringify(shown)}\n/status says ${JSON.stringify(want)}`);
  }
  if (want.reconnects < 1 || want.files < 1 || Object.keys(want.wikis).length < 5) {
    fail(`the run did not exercise the page: ${JSON.stringify(want)}`);
  }
  const bars = await page.locator("#chart rect").count();
  if (bars < 1) fail("the chart has no bars");
  console.log(`status page: shows the same totals as /status (${JSON.stringify(want.types)}), ${bars} chart bars`);

  // Self-contained: nothing but the page and /status was requested.
  const foreign = requests.filter((url) => !url.startsWith(base));
  if (foreign.length > 0) fail(`external requests: ${foreign.join(", ")}`);

  // Keyboard: the pause button is reachable with Tab and works with Enter.
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement.id);
  if (focused !== "pause") fail(`Tab focuses "${focused}", not the pause button`);
  await page.keyboard.press("Enter");
  if ((await page.getAttribute("#pause", "aria-pressed")) !== "true") fail("Enter did not pause");
  await page.keyboard.press("Enter");
  await page.screenshot({ path: screenshot, fullPage: true });

  // A phone: nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`the page is ${overflow} px wider than a phone screen`);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-phone.png"), fullPage: true });
  console.log(`status page: screenshots in ${screenshot} and ${screenshot.replace(/\.png$/, "-phone.png")}`);
} finally {
  await browser.close();
}
