// Shared helpers of the browser scenarios. Each scenario is a Node script
// the Go test runs with the environment below; it talks to the test over
// stdio: `step(name, data)` prints "STEP <name> <json>" and waits for the
// test to answer one line "OK <json>" (or "FAIL <reason>"). Everything else
// on stdout is log. A scenario ends with exit status 0 when it passed.
//
//   SSEHUB_BASE        the hub's base URL, e.g. http://127.0.0.1:41234
//   SSEHUB_TOKEN       a token that may publish and subscribe to everything
//   SSEHUB_SHOTS       directory for screenshots
//   SSEHUB_USER_DATA   a fresh Chromium profile directory
import { chromium } from "playwright-core";
import readline from "node:readline";
import path from "node:path";

export const base = must("SSEHUB_BASE");
export const token = must("SSEHUB_TOKEN");
export const shots = must("SSEHUB_SHOTS");

function must(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

// The answers of the test, one line each, in order.
const answers = [];
let waiting = null;
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (waiting) { const w = waiting; waiting = null; w(line); } else answers.push(line);
});

/** step asks the Go test to do something and returns its JSON answer. */
export async function step(name, data = {}) {
  process.stdout.write(`STEP ${name} ${JSON.stringify(data)}\n`);
  const line = answers.length ? answers.shift() : await new Promise((resolve) => { waiting = resolve; });
  if (line.startsWith("OK ")) return JSON.parse(line.slice(3));
  throw new Error(`step ${name}: ${line}`);
}

export function log(...args) {
  process.stdout.write(args.join(" ") + "\n");
}

export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };

/**
 * launch starts the system Chromium headless with a fresh profile (a
 * persistent context in SSEHUB_USER_DATA, an empty directory) and the
 * flags this closed network needs (no background connections, no QUIC),
 * plus extraArgs. It returns the browser context.
 */
export async function launch(extraArgs = []) {
  return chromium.launchPersistentContext(must("SSEHUB_USER_DATA"), {
    executablePath: process.env.SSEHUB_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: DESKTOP,
    reducedMotion: "reduce",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ...extraArgs,
    ],
  });
}

/**
 * newPage opens a page whose console errors, page errors and requests to
 * other origins are collected: a scenario fails if the UI caused any.
 */
export async function newPage(context, viewport = DESKTOP) {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  page.problems = [];
  page.on("console", (m) => { if (m.type() === "error") page.problems.push("console: " + m.text()); });
  page.on("pageerror", (e) => page.problems.push("page error: " + e.message));
  page.on("request", (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith("data:")) page.problems.push("request to another origin: " + r.url());
  });
  return page;
}

/** assertClean fails when the page logged errors or left its origin. */
export function assertClean(page, allow = []) {
  const bad = page.problems.filter((p) => !allow.some((re) => re.test(p)));
  if (bad.length) throw new Error("the page reported problems:\n" + bad.join("\n"));
}

/** shot saves a full-page screenshot as <name>.png in SSEHUB_SHOTS. */
export async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, name + ".png"), fullPage: true, animations: "disabled" });
}

/** assert throws with message unless cond holds. */
export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/**
 * run runs a scenario and sets the exit status. opts.args are extra
 * Chromium flags.
 */
export async function run(fn, opts = {}) {
  let browser; // the persistent browser context
  try {
    browser = await launch(opts.args || []);
    await fn(browser);
    log("PASS");
    await browser.close();
    process.exit(0);
  } catch (err) {
    process.stderr.write((err && err.stack) || String(err));
    process.stderr.write("\n");
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
  }
}
