// The public ledger in a real browser: Debian's chromium, headless, driven by playwright-core.
//
//   node site.mjs STATIC_BASE LIVE_BASE OUT_DIR
//
// STATIC_BASE serves a copy of `gatehouse site`'s output, LIVE_BASE is `gatehouse serve` with
// usage in its store. Checks that the resource table renders, that the search box filters the
// projects as one types, that the page fits a phone, that the dashboard draws its charts and
// its minutes-and-cost table, that the queue page lists every resource on a phone too, that
// a sponsor pool's page draws its burn-down chart, static and live, and that every chart is
// drawn with JavaScript off.
// Screenshots go to OUT_DIR. Exits non-zero on the first failed check.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [staticBase, liveBase, outDir] = process.argv.slice(2);
if (!staticBase || !liveBase || !outDir) {
  console.error("usage: node site.mjs STATIC_BASE LIVE_BASE OUT_DIR");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

const browser = await chromium.launch({
  executablePath,
  headless: true,
  // Containers (CI) run as root, where chromium's sandbox cannot start.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const failures = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => failures.push(`script error on ${page.url()}: ${e.message}`));
  page.on("response", (r) => {
    if (r.status() >= 400) failures.push(`${r.status()} for ${r.url()}`);
  });
  page.on("console", (m) => {
    // A failed load is reported by the response handler with its URL.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      failures.push(`console error on ${page.url()}: ${m.text()}`);
    }
  });

  // 1. The index: the resource table renders with a row per resource.
  await page.goto(`${staticBase}/index.html`);
  const resourceRows = page.locator("#resource-table tbody tr");
  const resources = await resourceRows.count();
  assert.ok(resources >= 10, `the resource table has ${resources} rows`);
  const first = resourceRows.first().locator("th a");
  assert.ok(await first.isVisible(), "the first resource's link is visible");
  const headers = await page.locator("#resource-table thead th").allTextContents();
  assert.deepEqual(headers.slice(0, 4), ["Resource", "Description", "Specs", "Provider"]);
  await page.screenshot({ path: join(outDir, "index.png") });
  console.log(`ok index: ${resources} resources rendered`);

  // 2. The search box (shown by the script) filters the projects as one types.
  const box = page.getByLabel("Filter projects");
  assert.ok(await box.isVisible(), "the search box is shown when scripts run");
  const projectRows = page.locator("#project-table tbody tr");
  const total = await projectRows.count();
  assert.ok(total >= 5, `the project table has ${total} rows`);
  await box.pressSequentially("pytorch", { delay: 20 });
  const visible = page.locator("#project-table tbody tr:visible");
  await page.waitForFunction(
    () => document.querySelectorAll("#project-table tbody tr:not([hidden])").length === 1,
  );
  assert.equal(await visible.count(), 1, "one project matches `pytorch`");
  assert.match(await visible.first().textContent(), /pytorch-cpu/);
  assert.equal(
    (await page.locator("form[data-filter] output").textContent()).trim(),
    `1 of ${total} shown`,
  );
  await page.locator("#projects").scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(outDir, "search.png") });
  // Words narrow, a miss shows nothing, clearing shows all again.
  await box.fill("no-such-project-anywhere");
  await page.waitForFunction(
    () => document.querySelectorAll("#project-table tbody tr:not([hidden])").length === 0,
  );
  await box.fill("");
  await page.waitForFunction(
    (n) => document.querySelectorAll("#project-table tbody tr:not([hidden])").length === n,
    total,
  );
  // A filtered view can be linked: `?q=` fills the box.
  await page.goto(`${staticBase}/index.html?q=pytorch`);
  await page.waitForFunction(
    () => document.querySelectorAll("#project-table tbody tr:not([hidden])").length === 1,
  );
  assert.equal(await page.getByLabel("Filter projects").inputValue(), "pytorch");
  console.log(`ok search: \`pytorch\` leaves 1 of ${total} projects, also from ?q=`);

  // 3. Readable on a phone: nothing wider than the screen but the tables' own scroll boxes.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${staticBase}/resources/cirun-openstack-gpu-large.html`);
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  assert.ok(overflow <= 1, `the resource page is ${overflow}px wider than a phone`);
  assert.ok(await page.locator("#grant-table tbody tr").first().isVisible());
  await page.screenshot({ path: join(outDir, "resource-phone.png"), fullPage: true });
  console.log("ok phone: the resource page fits 390px");

  // 4. The live dashboard draws a chart with bars.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${liveBase}/dashboard`);
  const chart = page.locator("svg.chart").first();
  await chart.waitFor();
  const box2 = await chart.boundingBox();
  assert.ok(box2 && box2.width > 200 && box2.height > 50, `chart box ${JSON.stringify(box2)}`);
  const bars = await page.locator("svg.chart").first().locator("rect.bar").count();
  assert.equal(bars, 12, "twelve weekly bars");
  const tallest = await page.evaluate(() =>
    Math.max(...[...document.querySelectorAll("svg.chart rect.bar")].map((r) => r.getBBox().height)),
  );
  assert.ok(tallest > 10, `the tallest bar is ${tallest} units high`);
  assert.match(await chart.getAttribute("aria-label"), /minutes per week/);
  await chart.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(outDir, "dashboard.png") });
  console.log(`ok dashboard: a chart of ${bars} bars, the tallest ${tallest} high`);

  // The month-by-month table lists the minutes the store holds.
  const spendRows = await page.locator("#spend-table tbody tr").count();
  assert.ok(spendRows >= 2, `the minutes-and-cost table has ${spendRows} rows`);

  // 5. The live index is the same ledger, with a link to the dashboard.
  await page.goto(`${liveBase}/`);
  assert.equal(await page.locator("#resource-table tbody tr").count(), resources);
  assert.ok(await page.getByRole("link", { name: "Usage" }).isVisible());

  // 6. The live queue: a row per resource, readable on a phone.
  await page.goto(`${liveBase}/queue`);
  const queueRows = await page.locator("#queue-table tbody tr").count();
  assert.equal(queueRows, resources, "the queue has a row per resource");
  await page.setViewportSize({ width: 390, height: 844 });
  const queueOverflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  assert.ok(queueOverflow <= 1, `the queue page is ${queueOverflow}px wider than a phone`);
  await page.screenshot({ path: join(outDir, "queue-phone.png"), fullPage: true });
  console.log(`ok queue: ${queueRows} resources, fits 390px`);

  // 7. A sponsor pool's page, on the static site (`gatehouse site --db`) and live: the
  // burn-down chart draws the credit left (falling) and the end date; the pool is listed, and
  // its spending by project adds up to what it spent.
  for (const [url, shot, width] of [
    [`${staticBase}/pools/gpu-credit.html`, "pool.png", 1280],
    [`${liveBase}/pools/gpu-credit`, "pool-live-phone.png", 390],
  ]) {
    await page.setViewportSize({ width, height: 900 });
    await page.goto(url);
    const burn = page.locator("svg.chart.burn-down");
    await burn.waitFor();
    const b = await burn.boundingBox();
    assert.ok(b && b.width > 200 && b.height > 60, `burn-down box ${JSON.stringify(b)} on ${url}`);
    const points = (await burn.locator("polyline.spent").getAttribute("points")).trim().split(/\s+/);
    assert.ok(points.length >= 3, `the credit-left line has ${points.length} points on ${url}`);
    const ys = points.map((p) => Number(p.split(",")[1]));
    assert.ok(ys[ys.length - 1] > ys[0], `the credit left falls (${ys[0]} to ${ys[ys.length - 1]}) on ${url}`);
    assert.equal(await burn.locator("line.end").count(), 1, "the end date is drawn");
    // The lines are seen, not only there: each is stroked, in a colour, some pixels wide.
    for (const part of ["polyline.spent", "line.end"]) {
      const style = await burn
        .locator(part)
        .evaluate((e) => ({ stroke: getComputedStyle(e).stroke, width: getComputedStyle(e).strokeWidth }));
      assert.ok(style.stroke !== "none" && parseFloat(style.width) >= 1, `${part} is drawn: ${JSON.stringify(style)}`);
    }
    assert.match(await burn.getAttribute("aria-label"), /gpu-credit: .* of 20000 minutes left/);
    assert.ok((await page.locator("#by-project-table tbody tr").count()) >= 2, "spending by project");
    const over = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    assert.ok(over <= 1, `the pool page is ${over}px wider than the window on ${url}`);
    await burn.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(outDir, shot), fullPage: width < 500 });
    console.log(`ok pool: ${url} draws ${points.length} points, fits ${width}px`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${staticBase}/index.html`);
  await page.getByRole("link", { name: "Pools" }).click();
  assert.equal(await page.locator("#pools-table tbody tr").count(), 1, "one pool listed");
  await page.locator("#pools-table tbody tr th a").click();
  await page.locator("svg.chart.burn-down").waitFor();
  console.log("ok pools: the static site links its pools from every page");

  // 8. The charts need no JavaScript: with scripts off, every chart page still draws its
  // bars or lines, live and static (`gatehouse site --db`).
  const noScript = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 } });
  try {
    const bare = await noScript.newPage();
    for (const [url, selector] of [
      [`${liveBase}/dashboard`, "svg.chart rect.bar"],
      [`${liveBase}/dashboard/projects/pytorch-cpu`, "svg.chart rect.bar"],
      [`${staticBase}/resources/cirun-openstack-gpu-large.html`, "svg.chart rect.bar"],
      [`${staticBase}/pools/gpu-credit.html`, "svg.chart.burn-down polyline.spent"],
      [`${liveBase}/pools/gpu-credit`, "svg.chart.burn-down polyline.spent"],
    ]) {
      const answer = await bare.goto(url);
      assert.ok(answer && answer.ok(), `${url} answers ${answer && answer.status()} without scripts`);
      const parts = await bare.locator(selector).all();
      const boxes = await Promise.all(parts.map((p) => p.boundingBox()));
      const seen = boxes.filter((b) => b && b.width > 0 && b.height > 0).length;
      assert.ok(seen > 0, `${selector}: ${parts.length} on ${url} without scripts, ${seen} with a size`);
    }
    await bare.screenshot({ path: join(outDir, "pool-no-script.png") });
    console.log("ok no script: the charts are drawn with JavaScript off");
  } finally {
    await noScript.close();
  }
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log(`screenshots in ${outDir}`);
