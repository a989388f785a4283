// The console in a real browser (Debian's chromium, driven by playwright-core)
// against a real `baton serve` on a temporary SQLite file: the quick start
// done through the console, a batch cancel, a deploy with a diagnostic, and a
// viewer refused. Screenshots go to docs/console/.
//
// BATON_BIN names the binary (scripts/test passes the release build);
// CHROMIUM the browser (default /usr/bin/chromium).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repository = join(here, '..', '..');
const shots = join(repository, 'docs', 'console');
const baton = process.env.BATON_BIN || join(process.env.CARGO_TARGET_DIR || join(repository, 'target'), 'release', 'baton');

const ORDER = `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
  xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="http://example.org">
  <process id="order" name="Order" isExecutable="true">
    <startEvent id="start" name="Ordered"/>
    <serviceTask id="charge" name="Charge"><extensionElements><zeebe:taskDefinition type="charge"/></extensionElements></serviceTask>
    <userTask id="approve" name="Approve"><extensionElements><zeebe:assignmentDefinition candidateGroups="managers"/></extensionElements></userTask>
    <serviceTask id="ship" name="Ship"><extensionElements><zeebe:taskDefinition type="ship"/></extensionElements></serviceTask>
    <endEvent id="end" name="Done"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="charge"/>
    <sequenceFlow id="f2" sourceRef="charge" targetRef="approve"/>
    <sequenceFlow id="f3" sourceRef="approve" targetRef="ship"/>
    <sequenceFlow id="f4" sourceRef="ship" targetRef="end"/>
  </process>
  <bpmndi:BPMNDiagram id="dia"><bpmndi:BPMNPlane id="plane" bpmnElement="order">
    <bpmndi:BPMNShape id="s_start" bpmnElement="start"><dc:Bounds x="100" y="100" width="36" height="36"/></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="s_charge" bpmnElement="charge"><dc:Bounds x="190" y="78" width="100" height="80"/></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="s_approve" bpmnElement="approve"><dc:Bounds x="340" y="78" width="100" height="80"/></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="s_ship" bpmnElement="ship"><dc:Bounds x="490" y="78" width="100" height="80"/></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="s_end" bpmnElement="end"><dc:Bounds x="640" y="100" width="36" height="36"/></bpmndi:BPMNShape>
    <bpmndi:BPMNEdge id="e1" bpmnElement="f1"><di:waypoint x="136" y="118"/><di:waypoint x="190" y="118"/></bpmndi:BPMNEdge>
    <bpmndi:BPMNEdge id="e2" bpmnElement="f2"><di:waypoint x="290" y="118"/><di:waypoint x="340" y="118"/></bpmndi:BPMNEdge>
    <bpmndi:BPMNEdge id="e3" bpmnElement="f3"><di:waypoint x="440" y="118"/><di:waypoint x="490" y="118"/></bpmndi:BPMNEdge>
    <bpmndi:BPMNEdge id="e4" bpmnElement="f4"><di:waypoint x="590" y="118"/><di:waypoint x="640" y="118"/></bpmndi:BPMNEdge>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</definitions>`;

// The approval's form, deployed beside the model (Camunda Modeler saves it as approval.form).
const APPROVAL_FORM = JSON.stringify({
  id: 'approval',
  type: 'default',
  schemaVersion: 16,
  components: [
    { type: 'checkbox', key: 'approved', label: 'Approved', id: 'Field_approved' },
    { type: 'textfield', key: 'comment', label: 'Comment', id: 'Field_comment' },
  ],
});
const ORDER_WITH_FORM = ORDER.replace('<zeebe:assignmentDefinition candidateGroups="managers"/>', '<zeebe:assignmentDefinition candidateGroups="managers"/><zeebe:formDefinition formId="approval"/>');

// A service task without a job type: refused, with the element named.
const BROKEN = ORDER.replace('<zeebe:taskDefinition type="ship"/>', '').replace('id="order"', 'id="broken"').replace('bpmnElement="order"', 'bpmnElement="broken"');

const servers = [];
let browser;
const work = mkdtempSync(join(tmpdir(), 'baton-console-'));

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function serve(name, extra = []) {
  const port = await freePort();
  const db = `sqlite://${join(work, `${name}.db`)}`;
  const child = spawn(baton, ['serve', '--db', db, '--listen', `127.0.0.1:${port}`, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (chunk) => (log += chunk));
  servers.push(child);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return { base, db, log: () => log };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`baton serve did not come up: ${log}`);
}

async function api(base, method, path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const value = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return value;
}

/** Takes one job of `type` as a worker would, and finishes it with `outcome` ('complete' or a fail body). */
async function work1(base, type, outcome = 'complete') {
  const { jobs } = await api(base, 'POST', '/v1/jobs/activate', { type, worker: 'test-worker', timeout_ms: 5000 });
  assert.equal(jobs.length, 1, `one ${type} job`);
  const job = jobs[0];
  if (outcome === 'complete') await api(base, 'POST', `/v1/jobs/${job.key}/complete`, { worker: 'test-worker', lease: job.lease, variables: { [`${type}_done`]: true } });
  else await api(base, 'POST', `/v1/jobs/${job.key}/fail`, { worker: 'test-worker', lease: job.lease, ...outcome });
  return job;
}

async function open(url, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (message) => {
    // The API's refusals (4xx) are answers the page shows; the browser logs each fetch of one all the same.
    if (message.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(message.text())) errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('dialog', (dialog) => dialog.accept(dialog.type() === 'prompt' ? 'done in the browser test' : undefined));
  await page.goto(url);
  return { page, errors, context };
}

const shot = (page, name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

before(async () => {
  mkdirSync(shots, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  for (const child of servers) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

test('the quick start through the console: deploy, start, the token on the diagram, a task, an incident retried, the end', async () => {
  const { base } = await serve('quick');
  const { page, errors } = await open(`${base}/`);
  await page.getByRole('link', { name: 'Workflows' }).click();
  const file = join(work, 'order.bpmn');
  writeFileSync(file, ORDER_WITH_FORM);
  const form = join(work, 'approval.form');
  writeFileSync(form, APPROVAL_FORM);
  await page.getByLabel('BPMN files').setInputFiles([file, form]);
  await page.getByRole('button', { name: 'Deploy' }).click();
  await page.getByText('Deployed: order v1, form approval v1').waitFor();
  await page.getByRole('link', { name: 'order' }).click();
  await page.getByLabel('variables (JSON object)').fill('{"amount": 5}');
  await page.getByLabel('business key').fill('o-1');
  await page.getByRole('button', { name: 'Start' }).click();
  await page.waitForURL(/#\/instances\//);
  const id = decodeURIComponent(page.url().split('#/instances/')[1]);
  // The token waits on Charge: its badge is on the diagram.
  await page.locator('.diagram-badge.waiting[data-element="charge"]').waitFor();
  await shot(page, 'instance-waiting');

  await work1(base, 'charge');
  await page.reload();
  await page.locator('.diagram-badge.waiting[data-element="approve"]').waitFor();
  assert.equal(await page.locator('.diagram-badge.ran[data-element="charge"]').textContent(), '1', 'Charge ran once');

  // The user task, claimed on the tasks page and completed with its form (form-js, its watermark kept).
  await page.getByRole('link', { name: 'Tasks' }).click();
  await page.getByLabel('your name').fill('ann');
  await page.getByLabel('your name').press('Tab');
  await page.getByRole('button', { name: 'Claim' }).click();
  await page.getByRole('button', { name: 'Give back' }).waitFor();
  await shot(page, 'tasks');
  await page.getByRole('link', { name: 'Work on it' }).click();
  await page.getByText('the deployed form approval, version 1').waitFor();
  // Its priority and due date changed on the task page.
  await page.getByLabel('Priority').fill('70');
  await page.getByLabel('Due').fill('2026-02-01T09:00:00Z');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('dl.facts').getByText('70', { exact: true }).waitFor();
  const changed = (await api(base, 'GET', '/v1/tasks')).items[0];
  assert.deepEqual([changed.priority, changed.due], [70, '2026-02-01T09:00:00Z']);
  await page.getByLabel('Approved').check();
  await page.getByLabel('Comment').fill('fine by me');
  assert.equal(await page.locator('.fjs-powered-by').count(), 1, 'the form-js watermark is shown');
  await shot(page, 'task-form');
  await page.getByRole('button', { name: 'Complete' }).click();
  await page.getByText('No tasks here.').waitFor();
  await page.getByRole('link', { name: 'Completed' }).click();
  await page.getByRole('columnheader', { name: 'Completed by' }).waitFor();
  assert.match(await page.locator('tbody').innerText(), /approve\t.*\tann\t.*\tann\t/, 'completed by ann, who held it');
  const variables = (await api(base, 'GET', `/v1/instances/${encodeURIComponent(id)}`)).variables;
  assert.equal(variables.approved, true);
  assert.equal(variables.comment, 'fine by me');

  // Shipping fails with no retries left: an incident, shown, then retried from the console.
  await work1(base, 'ship', { retries: 0, message: 'no stock' });
  await page.goto(`${base}/#/instances/${encodeURIComponent(id)}`);
  await page.locator('.diagram-badge.incident[data-element="ship"]').waitFor();
  await page.getByText('no stock').first().waitFor();
  await shot(page, 'instance-incident');
  // The incidents page groups it, with a bulk retry.
  await page.getByRole('link', { name: 'Incidents' }).click();
  await page.getByRole('cell', { name: 'no stock' }).waitFor();
  await shot(page, 'incidents');
  await page.goto(`${base}/#/instances/${encodeURIComponent(id)}`);
  await page.getByRole('button', { name: 'Retry' }).click();
  await page.getByText('resolved by').waitFor();
  await work1(base, 'ship');
  await page.reload();
  await page.locator('.badge.status-completed').first().waitFor();
  // A refused action shows why, where it was.
  await page.getByLabel('variables to set (JSON object)').fill('{not json');
  await page.getByRole('button', { name: 'Save variables' }).click();
  await page.getByRole('alert').filter({ hasText: 'not JSON' }).waitFor();
  await page.getByLabel('variables to set (JSON object)').fill('{"note": 1}');
  await page.getByRole('button', { name: 'Save variables' }).click();
  await page.getByRole('alert').filter({ hasText: 'instance' }).waitFor();
  // The history, in order, with who did what.
  const history = await page.locator('table').last().innerText();
  assert.match(history, /completed\tApprove\t1\tann/, 'the task is completed by the user the console names');
  assert.match(history, /incident_resolved/);
  await shot(page, 'instance-completed');
  // The same page at phone width, and the keyboard reaches the navigation.
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, 'instance-phone');
  await page.locator('.brand').focus();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Instances', 'Tab moves through the header links');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Instances' }).waitFor();
  await page.goto(`${base}/#/tasks?view=completed`);
  await page.getByRole('columnheader', { name: 'Completed by' }).waitFor();
  await shot(page, 'tasks-phone');
  // The workflows list with its counts per version, at desktop width.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${base}/#/workflows`);
  await page.getByRole('cell', { name: 'approval', exact: true }).waitFor();
  assert.match(await page.locator('table').first().innerText(), /order\t1\t.*\t1\t/, 'one completed instance of order v1');
  await shot(page, 'workflows');
  assert.deepEqual(errors, []);
});

const WAIT = ORDER.replace('<serviceTask id="charge" name="Charge"><extensionElements><zeebe:taskDefinition type="charge"/></extensionElements></serviceTask>',
  '<intermediateCatchEvent id="charge" name="Cool off"><timerEventDefinition><timeDuration>P3D</timeDuration></timerEventDefinition></intermediateCatchEvent>');

test('a waiting timer is moved from the instance page', async () => {
  const { base } = await serve('timer');
  await api(base, 'POST', '/v1/workflows', { resources: [{ name: 'order.bpmn', xml: WAIT }] });
  const { id } = await api(base, 'POST', '/v1/instances', { workflow: 'order' });
  const { page, errors } = await open(`${base}/#/instances/${encodeURIComponent(id)}`);
  await page.locator('.diagram-badge.due[data-element="charge"]').waitFor();
  await page.getByLabel('new due time of charge').fill('2030-01-02T03:04');
  await page.getByRole('button', { name: 'Reschedule' }).click();
  await page.getByRole('status').filter({ hasText: 'done' }).first().waitFor();
  const [timer] = (await api(base, 'GET', '/v1/timers')).items;
  assert.equal(new Date(timer.due_at).getTime(), new Date('2030-01-02T03:04').getTime(), 'the due time the page was given, in its local time');
  const history = await api(base, 'GET', `/v1/instances/${encodeURIComponent(id)}/history?event=timer_rescheduled`);
  assert.equal(history.items[0].reason, 'rescheduled in the console');
  assert.deepEqual(errors, []);
});

test('a batch cancel from the instances list', async () => {
  const { base } = await serve('batch');
  await api(base, 'POST', '/v1/workflows', { resources: [{ name: 'order.bpmn', xml: ORDER }] });
  for (let i = 0; i < 3; i++) await api(base, 'POST', '/v1/instances', { workflow: 'order', business_key: `b-${i}` });
  const { page, errors } = await open(`${base}/#/instances?status=running`);
  const boxes = page.getByRole('checkbox', { name: /^select / });
  await boxes.first().waitFor();
  assert.equal(await boxes.count(), 3);
  for (let i = 0; i < 3; i++) await boxes.nth(i).check();
  await page.getByRole('button', { name: 'Cancel', exact: true }).click();
  await page.waitForFunction(() => document.body.innerText.includes('No instance matches.'));
  const cancelled = await api(base, 'GET', '/v1/instances?status=cancelled');
  assert.equal(cancelled.items.length, 3);
  assert.ok(cancelled.items.every((i) => i.status === 'cancelled'));
  await page.goto(`${base}/#/instances`);
  // The business key's cell: an instance id may itself contain "b-2".
  await page.getByRole('cell', { name: 'b-2', exact: true }).waitFor();
  // Sorted by start time the other way: the last started first.
  await page.getByRole('link', { name: /^Started/ }).click();
  await page.waitForURL(/order=-started/);
  await page.getByRole('link', { name: /^Started ▼/ }).waitFor();
  const keys = await page.locator('tbody tr td:nth-child(6)').allInnerTexts();
  assert.deepEqual(keys, ['b-2', 'b-1', 'b-0']);
  await shot(page, 'instances');
  // An ended instance deleted from its page (issue 16): gone, with its history.
  const gone = cancelled.items[0].id;
  const kept = cancelled.items[1].id;
  await api(base, 'POST', `/v1/instances/${encodeURIComponent(kept)}/keep`, { until: '2031-01-01T00:00:00Z' });
  await page.goto(`${base}/#/instances/${encodeURIComponent(kept)}`);
  await page.locator('dl.facts').getByText(kept, { exact: true }).waitFor();
  await page.getByText('Deleted at').waitFor();
  await page.getByRole('button', { name: 'Keep for ever', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'done' }).first().waitFor();
  assert.equal((await api(base, 'GET', `/v1/instances/${encodeURIComponent(kept)}`)).delete_at, null, 'kept for ever from its page');
  await page.goto(`${base}/#/instances/${encodeURIComponent(gone)}`);
  // The page of that instance, not the one before it still on screen.
  await page.locator('dl.facts').getByText(gone, { exact: true }).waitFor();
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.waitForURL(/#\/instances$/);
  const left = await api(base, 'GET', '/v1/instances?status=cancelled');
  assert.deepEqual(left.items.map((i) => i.id).includes(gone), false);
  assert.equal(left.items.length, 2);
  assert.deepEqual(errors, []);
});

test('modify: elements picked on the diagram, the change reviewed, applied', async () => {
  const { base } = await serve('modify');
  await api(base, 'POST', '/v1/workflows', { resources: [{ name: 'order.bpmn', xml: ORDER }] });
  const { id } = await api(base, 'POST', '/v1/instances', { workflow: 'order' });
  const { page, errors } = await open(`${base}/#/instances/${encodeURIComponent(id)}`);
  await page.locator('.diagram-badge.waiting[data-element="charge"]').waitFor();
  // Picked on the diagram: the token moves from Charge to Approve.
  await page.locator('.djs-element[data-element-id="approve"]').click();
  await page.getByRole('button', { name: 'Activate approve' }).click();
  await page.locator('.djs-element[data-element-id="charge"]').click();
  await page.getByRole('button', { name: 'Terminate charge' }).click();
  const plan = await page.locator('.plan').innerText();
  assert.match(plan, /activate approve/);
  assert.match(plan, /terminate charge/);
  assert.equal(await page.locator('.djs-element.to-activate[data-element-id="approve"]').count(), 1, 'the plan is marked on the diagram');
  await shot(page, 'instance-modify');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.locator('.diagram-badge.waiting[data-element="approve"]').waitFor();
  const instance = await api(base, 'GET', `/v1/instances/${encodeURIComponent(id)}`);
  assert.deepEqual(instance.waits.map((w) => w.element), ['approve']);
  const history = await api(base, 'GET', `/v1/instances/${encodeURIComponent(id)}/history`);
  const events = history.items.map((e) => [e.event, e.element, e.reason]);
  assert.ok(events.some(([event, , reason]) => event === 'modified' && reason === 'modified in the console'), JSON.stringify(events));
  assert.ok(events.some(([event, element]) => event === 'terminated' && element === 'charge'), JSON.stringify(events));
  // The history's filter narrows the timeline.
  await page.getByLabel('history event').selectOption('terminated');
  const rows = await page.locator('.history tbody tr').count();
  assert.equal(rows, 1, 'one terminated entry');
  assert.deepEqual(errors, []);
});

test('a deploy with a diagnostic shows it on the diagram, and nothing is deployed', async () => {
  const { base } = await serve('broken');
  const { page, errors } = await open(`${base}/#/workflows`);
  const file = join(work, 'broken.bpmn');
  writeFileSync(file, BROKEN);
  await page.getByLabel('BPMN files').setInputFiles(file);
  await page.getByRole('button', { name: 'Deploy' }).click();
  await page.locator('.diagnostics').waitFor();
  const text = await page.locator('.diagnostics').innerText();
  assert.match(text, /ship/);
  await page.locator('.diagram-badge.incident[data-element="ship"]').waitFor();
  await shot(page, 'deploy-diagnostic');
  assert.equal((await api(base, 'GET', '/v1/workflows')).items.length, 0);
  assert.deepEqual(errors, []);
});

test('with tokens on, the console asks for one, and a viewer is refused an action with the API error', async () => {
  const db = join(work, 'secure.db');
  const viewer = execFileSync(baton, ['tokens', 'create', '--name', 'vera', '--role', 'viewer', '--db', `sqlite://${db}`]).toString().trim();
  const admin = execFileSync(baton, ['tokens', 'create', '--name', 'root', '--role', 'admin', '--db', `sqlite://${db}`]).toString().trim();
  const port = await freePort();
  const child = spawn(baton, ['serve', '--db', `sqlite://${db}`, '--listen', `127.0.0.1:${port}`, '--auth', 'token'], { stdio: 'ignore' });
  servers.push(child);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300 && !(await fetch(`${base}/healthz`).then((r) => r.ok, () => false)); i++) await new Promise((r) => setTimeout(r, 50));
  await api(base, 'POST', '/v1/workflows', { resources: [{ name: 'order.bpmn', xml: ORDER }] }, admin);
  const { id } = await api(base, 'POST', '/v1/instances', { workflow: 'order' }, admin);
  const { page, errors } = await open(`${base}/#/instances/${encodeURIComponent(id)}`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await shot(page, 'sign-in');
  await page.getByLabel('API token').fill(viewer);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.diagram-badge.waiting[data-element="charge"]').waitFor();
  // A viewer is offered no action (the console asks /v1/me what the token may call), and the API refuses it all the same.
  for (const name of ['Cancel', 'Suspend', 'Save variables', 'Apply']) assert.equal(await page.getByRole('button', { name, exact: true }).count(), 0, `${name} is not offered`);
  await assert.rejects(api(base, 'POST', `/v1/instances/${encodeURIComponent(id)}/cancel`, {}, viewer), /403.*forbidden/);
  await shot(page, 'viewer-refused');
  assert.equal((await api(base, 'GET', `/v1/instances/${encodeURIComponent(id)}`, undefined, admin)).status, 'running');
  assert.deepEqual(errors, []);
  assert.ok(readFileSync(join(shots, 'viewer-refused.png')).length > 1000);
});

/**
 * An OpenID Connect issuer for the test: discovery, keys, an authorization
 * endpoint that signs "olga" in at once, and a token endpoint that checks the
 * PKCE verifier against the challenge before it issues an RS256 access token.
 */
async function issuer() {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };
  const codes = new Map();
  const seen = { authorize: [], token: [] };
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const b64 = (value) => Buffer.from(value).toString('base64url');
  const server = createHttpServer(async (request, response) => {
    const url = new URL(request.url, base);
    const send = (status, value, headers = {}) => {
      response.writeHead(status, { 'content-type': 'application/json', 'access-control-allow-origin': '*', ...headers });
      response.end(value === undefined ? '' : JSON.stringify(value));
    };
    if (url.pathname === '/.well-known/openid-configuration') {
      return send(200, { issuer: base, jwks_uri: `${base}/jwks`, authorization_endpoint: `${base}/authorize`, token_endpoint: `${base}/token` });
    }
    if (url.pathname === '/jwks') return send(200, { keys: [jwk] });
    if (url.pathname === '/authorize') {
      const params = Object.fromEntries(url.searchParams);
      seen.authorize.push(params);
      const code = randomBytes(8).toString('hex');
      codes.set(code, params);
      const back = new URL(params.redirect_uri);
      back.searchParams.set('code', code);
      back.searchParams.set('state', params.state);
      response.writeHead(302, { location: back.toString() });
      return response.end();
    }
    if (url.pathname === '/token' && request.method === 'POST') {
      let body = '';
      for await (const chunk of request) body += chunk;
      const form = Object.fromEntries(new URLSearchParams(body));
      seen.token.push(form);
      const asked = codes.get(form.code);
      codes.delete(form.code);
      const challenge = createHash('sha256').update(form.code_verifier || '').digest('base64url');
      if (!asked || asked.code_challenge !== challenge || asked.redirect_uri !== form.redirect_uri || asked.client_id !== form.client_id) {
        return send(400, { error: 'invalid_grant', error_description: 'the code or its verifier does not match' });
      }
      const now = Math.floor(Date.now() / 1000);
      const header = b64(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'k1' }));
      const claims = b64(JSON.stringify({ iss: base, aud: 'baton', sub: 'u-olga', preferred_username: 'olga', roles: ['operator'], iat: now, nbf: now - 5, exp: now + 300 }));
      const signature = sign('RSA-SHA256', Buffer.from(`${header}.${claims}`), privateKey).toString('base64url');
      return send(200, { access_token: `${header}.${claims}.${signature}`, token_type: 'Bearer', expires_in: 300 });
    }
    return send(404, { error: 'not_found' });
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { base, seen, close: () => server.close() };
}

test('with OpenID Connect on, the console signs in at the issuer (authorization code with PKCE)', async () => {
  const idp = await issuer();
  try {
    const { base } = await serve('oidc', ['--auth', 'oidc', '--oidc-issuer', idp.base, '--oidc-audience', 'baton', '--oidc-console-client-id', 'baton-console']);
    const { page, errors } = await open(`${base}/#/instances`);
    await page.getByRole('button', { name: 'Sign in at the issuer' }).click();
    // Away to the issuer and back: the console traded the code for a token and shows the page.
    await page.getByRole('heading', { name: 'Instances' }).waitFor();
    assert.equal(new URL(page.url()).search, '', 'the code is taken off the address');
    assert.equal(idp.seen.authorize[0].code_challenge_method, 'S256');
    assert.equal(idp.seen.authorize[0].redirect_uri, `${base}/console/`);
    assert.ok(idp.seen.token[0].code_verifier.length >= 43, 'a verifier of at least 43 characters');
    const me = await page.evaluate(async () => (await fetch('/v1/me', { headers: { authorization: `Bearer ${sessionStorage.getItem('baton-token')}` } })).json());
    assert.equal(me.name, 'olga');
    assert.deepEqual(me.roles, ['operator']);
    // An operator may cancel but not deploy: the workflows page offers no deploy form.
    await page.getByRole('link', { name: 'Workflows' }).click();
    await page.getByRole('heading', { name: 'Workflows' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Deploy' }).count(), 0);
    await shot(page, 'signed-in-oidc');
    assert.deepEqual(errors, []);
  } finally {
    idp.close();
  }
});
