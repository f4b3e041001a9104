// The dashboard in a real browser (Debian's Chromium driven by
// playwright-core; no browser is downloaded) against a running tenfold:
// sign up, upload MNIST-5k over tus and see it validated with its
// examples, upload a file that is not a ZIP and see its problems by place,
// and a second organization that sees none of the first's datasets.
// Screenshots of each page go to $SCREENSHOTS. Exits non-zero on the first
// failed expectation or on any console error.
//   node e2e/journey.mjs http://127.0.0.1:8080 path/to/mnist-5k.zip
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, mnist] = process.argv.slice(2);
const shots = process.env.SCREENSHOTS ?? join(tmpdir(), "tenfold-screenshots");
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const consoleErrors = [];

function expect(condition, what) {
  if (!condition) throw new Error(`expected ${what}`);
}

async function signUp(email, organization) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(`${email}: ${m.text()}`));
  page.on("pageerror", (e) => consoleErrors.push(`${email}: ${e.message}`));
  page.on("response", (r) => r.status() >= 400 && consoleErrors.push(`${email}: ${r.request().method()} ${r.url()} answered ${r.status()}`));
  await page.goto(`${base}/signup`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("correct horse battery staple");
  await page.getByLabel("Organization").fill(organization);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByRole("heading", { name: "Datasets" }).waitFor();
  return page;
}

async function upload(page, name, file, family) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Upload" }).click();
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Family").selectOption(family);
  await page.getByLabel("File").setInputFiles(file);
  await page.getByRole("button", { name: "Upload" }).click();
  await page.waitForURL(/\/datasets\/versions\//, { timeout: 60_000 });
  await page.locator(".badge:not(.pending)").filter({ hasNotText: "validating" }).waitFor({ timeout: 120_000 });
}

try {
  // A fresh organization: the empty state says what to do.
  const ada = await signUp("ada@example.com", "Acme");
  expect(await ada.getByText("No datasets yet.").isVisible(), "the empty state");
  await ada.screenshot({ path: join(shots, "01-datasets-empty.png") });

  // A real dataset: validated, with its statistics and examples.
  await upload(ada, "digits", mnist, "IMAGE_CLASSIFICATION");
  expect((await ada.locator(".badge").first().innerText()) === "READY", "MNIST-5k to be READY");
  await ada.getByRole("img", { name: /^7: / }).first().waitFor();
  expect((await ada.locator(".stats").innerText()).includes("5000"), "5000 images in the statistics");
  await ada.screenshot({ path: join(shots, "02-dataset-ready.png"), fullPage: true });

  // A hostile upload: its problems, each with its place and what to do.
  const notAZip = join(tmpdir(), "notes.zip");
  writeFileSync(notAZip, "just some text, not an archive");
  await upload(ada, "broken", notAZip, "IMAGE_CLASSIFICATION");
  expect((await ada.locator(".badge").first().innerText()) === "INVALID", "the text file to be INVALID");
  const problems = ada.getByRole("table", { name: "Problems" });
  expect((await problems.innerText()).includes("not_a_zip") || (await problems.innerText()).toLowerCase().includes("zip"), "a ZIP problem listed");
  await ada.screenshot({ path: join(shots, "03-dataset-invalid.png"), fullPage: true });

  await ada.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Datasets" }).click();
  await ada.getByRole("link", { name: "digits" }).waitFor();
  await ada.screenshot({ path: join(shots, "04-datasets.png") });

  // Another organization sees none of it.
  const eve = await signUp("eve@example.com", "Evil");
  expect(await eve.getByText("No datasets yet.").isVisible(), "the second organization to see no datasets");
  expect((await eve.getByRole("link", { name: "digits" }).count()) === 0, "no link to the first organization's dataset");
  await eve.screenshot({ path: join(shots, "05-other-organization.png") });

  // At phone width the pages still work.
  await ada.setViewportSize({ width: 390, height: 844 });
  await ada.screenshot({ path: join(shots, "06-datasets-phone.png"), fullPage: true });

  expect(consoleErrors.length === 0, `no console errors, got: ${consoleErrors.join("; ")}`);
  console.log(`journey passed; screenshots in ${shots}`);
} catch (e) {
  console.error(`journey failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
