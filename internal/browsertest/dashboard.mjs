// The dashboard: it connects to the hub's stats stream, and its counters
// and charts move when the test applies load.
import { run, step, log, newPage, shot, assert, assertClean, base, PHONE } from "./lib.mjs";

const N = 50;

run(async (browser) => {
  const page = await newPage(browser);
  await page.goto(base + "/dashboard");
  assert((await page.title()) === "Dashboard · ssehub", "title " + (await page.title()));
  await page.locator('#dash-status[data-state="open"]').waitFor();
  const read = (key) => page.locator(`[data-total="${key}"][data-value]`).getAttribute("data-value").then(Number);
  await page.locator('[data-total="published"][data-value]').waitFor();
  const published0 = await read("published");
  const delivered0 = await read("delivered");
  log("before load: published", published0, "delivered", delivered0);

  await step("load", { n: N });

  // The counters catch up with the next snapshots.
  await page.waitForFunction(([p, d, n]) => {
    const v = (k) => Number(document.querySelector(`[data-total="${k}"]`).dataset.value);
    return v("published") >= p + n && v("delivered") >= d + n && v("subscribers") >= 1;
  }, [published0, delivered0, N]);
  log("after load: published", await read("published"), "delivered", await read("delivered"));
  // The rate charts drew the burst.
  for (const key of ["published_rate", "delivered_rate"]) {
    await page.waitForFunction((k) => Number(document.querySelector(`[data-card="${k}"] svg`).dataset.max) > 0, key);
  }
  // The store cards appear (the memory store reports no disk size).
  await page.locator('[data-card="store_retained"] output[data-value]').waitFor();
  assert(Number(await page.locator('[data-card="store_retained"] output').getAttribute("data-value")) >= N, "retained");

  // Let a few more points in, then keep screenshots. For the pictures in
  // the docs (-update-screenshots), the test first applies a steady,
  // varying load for a while so that the charts have a shape.
  if (process.env.SSEHUB_SCREENSHOT_LOAD) await step("steady-load", { seconds: 40 });
  await page.waitForFunction(() => Number(document.querySelector('[data-card="subscribers"] svg').dataset.points) >= 4);
  await shot(page, "dashboard-desktop");
  await page.setViewportSize(PHONE);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert(overflow <= 0, `the phone layout is ${overflow}px wider than the screen`);
  await shot(page, "dashboard-phone");
  assertClean(page);
});
