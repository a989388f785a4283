// Camunda's own TypeScript client (@camunda8/orchestration-cluster-api, from
// the npm registry) against a real `baton serve` on a temporary SQLite file:
// deploy, start, a job worker written as Camunda's guides write one, a failure
// with retries, a BPMN error caught by a boundary event, a message, a user
// task, and the results read back through searches. Responses are validated
// strictly against the client's own schemas (CAMUNDA_SDK_VALIDATION).
//
// BATON_BIN names the binary (scripts/test passes the release build).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import createCamundaClient from '@camunda8/orchestration-cluster-api';
import { startBaton } from './baton-server.mjs';

const ORDER = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="order-definitions" targetNamespace="http://example.org">
  <bpmn:message id="paid" name="payment-received"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message>
  <bpmn:error id="declined" errorCode="CARD_DECLINED"/>
  <bpmn:process id="order" name="Order" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="charge"/>
    <bpmn:serviceTask id="charge" name="Charge">
      <bpmn:extensionElements><zeebe:taskDefinition type="charge" retries="2"/><zeebe:taskHeaders><zeebe:header key="currency" value="EUR"/></zeebe:taskHeaders></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:boundaryEvent id="declined-card" attachedToRef="charge"><bpmn:errorEventDefinition errorRef="declined"/></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f-declined" sourceRef="declined-card" targetRef="rejected"/>
    <bpmn:endEvent id="rejected"/>
    <bpmn:sequenceFlow id="f2" sourceRef="charge" targetRef="wait-payment"/>
    <bpmn:intermediateCatchEvent id="wait-payment"><bpmn:messageEventDefinition messageRef="paid"/></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="wait-payment" targetRef="approve"/>
    <bpmn:userTask id="approve" name="Approve">
      <bpmn:extensionElements><zeebe:userTask/><zeebe:assignmentDefinition candidateGroups="managers"/></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f4" sourceRef="approve" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>`;

let server;
let camunda;
let base;
let work;

before(async () => {
  server = await startBaton('baton-camunda-node-');
  ({ base, work } = server);
  camunda = createCamundaClient({
    config: {
      CAMUNDA_REST_ADDRESS: base,
      CAMUNDA_AUTH_STRATEGY: 'NONE',
      CAMUNDA_SDK_VALIDATION: 'req:strict,res:strict',
      CAMUNDA_SDK_LOG_LEVEL: 'error',
    },
  });
});

after(() => server?.stop());

/** Reads are consistent in Baton (Camunda's are eventually so): the client need not poll them. */
const now = { consistency: { waitUpToMs: 0 } };

/** Polls `check` until it returns a value (searches are eventually consistent in Camunda; in Baton they are not, but clients are written this way). */
async function eventually(check) {
  for (let i = 0; i < 100; i++) {
    const value = await check();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not met');
}

test('the topology names one broker and one partition', async () => {
  const topology = await camunda.getTopology();
  assert.equal(topology.brokers.length, 1);
  assert.equal(topology.partitionsCount, 1);
});

test('deploy, start, work, fail, throw, correlate and complete through Camunda\'s client', async () => {
  const file = join(work, 'order.bpmn');
  writeFileSync(file, ORDER);
  const deployment = await camunda.deployResourcesFromFiles([file]);
  assert.equal(deployment.processes.length, 1);
  const [process] = deployment.processes;
  assert.equal(process.processDefinitionId, 'order');
  assert.equal(process.processDefinitionVersion, 1);

  // Three orders: one paid at once, one whose charge fails once then works, one declined.
  const start = (orderId, card) => camunda.createProcessInstance({ processDefinitionId: 'order', variables: { orderId, card } });
  const paid = await start('o-1', 'good');
  const flaky = await start('o-2', 'flaky');
  const declined = await start('o-3', 'stolen');
  assert.equal(paid.processDefinitionKey, process.processDefinitionKey);
  assert.match(paid.processInstanceKey, /^\d+$/);

  // A job worker as Camunda's getting-started guide writes one.
  const attempts = new Map();
  const handled = [];
  const worker = camunda.createJobWorker({
    jobType: 'charge',
    maxParallelJobs: 4,
    jobTimeoutMs: 30_000,
    pollIntervalMs: 50,
    jobHandler: async (job) => {
      const { orderId, card } = job.variables;
      attempts.set(orderId, (attempts.get(orderId) ?? 0) + 1);
      assert.equal(job.customHeaders.currency, 'EUR');
      if (card === 'stolen') return job.error({ errorCode: 'CARD_DECLINED', errorMessage: 'the card is reported stolen' });
      if (card === 'flaky' && attempts.get(orderId) === 1) return job.fail({ errorMessage: 'the bank timed out', retries: job.retries - 1, retryBackoff: 0 });
      handled.push(orderId);
      return job.complete({ charged: true });
    },
  });
  try {
    await eventually(() => handled.length === 2);
  } finally {
    worker.stop();
  }
  assert.deepEqual([...handled].sort(), ['o-1', 'o-2']);
  assert.equal(attempts.get('o-2'), 2, 'the failed job came back once');

  // The declined order ended at the error boundary event.
  const ended = await eventually(async () => {
    const found = await camunda.getProcessInstance({ processInstanceKey: declined.processInstanceKey }, now);
    return found.state === 'COMPLETED' && found;
  });
  assert.equal(ended.processDefinitionId, 'order');

  // Payments arrive as messages, correlated by the order id.
  for (const orderId of ['o-1', 'o-2']) {
    const published = await camunda.publishMessage({ name: 'payment-received', correlationKey: orderId, timeToLive: 60_000, variables: { paidAt: orderId } });
    assert.match(published.messageKey, /^\d+$/);
  }

  // Each paid order now waits at the approval, a user task for the managers.
  const tasks = await eventually(async () => {
    const found = await camunda.searchUserTasks({ filter: { state: 'CREATED', processDefinitionId: 'order' } }, now);
    return found.items.length === 2 && found;
  });
  for (const task of tasks.items) {
    assert.equal(task.elementId, 'approve');
    assert.deepEqual(task.candidateGroups, ['managers']);
    await camunda.assignUserTask({ userTaskKey: task.userTaskKey, assignee: 'ada' });
    await camunda.completeUserTask({ userTaskKey: task.userTaskKey, variables: { approved: true } });
  }

  // Every instance has ended; the variables were kept.
  const done = await eventually(async () => {
    const found = await camunda.searchProcessInstances({ filter: { processDefinitionId: 'order', state: 'COMPLETED' } }, now);
    return found.items.length === 3 && found;
  });
  assert.equal(done.page.totalItems, 3);
  const variables = await camunda.searchVariables({ filter: { processInstanceKey: flaky.processInstanceKey } }, now);
  const byName = Object.fromEntries(variables.items.map((v) => [v.name, JSON.parse(v.value)]));
  assert.deepEqual({ charged: byName.charged, approved: byName.approved, paidAt: byName.paidAt }, { charged: true, approved: true, paidAt: 'o-2' });
});

test('an operation Baton does not serve answers 501 with a problem naming it', async () => {
  await assert.rejects(camunda.evaluateExpression({ expression: '=1 + 1' }), (error) => {
    assert.equal(error.status, 501, String(error));
    return true;
  });
  const response = await fetch(`${base}/v2/batch-operations/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  const problem = await response.json();
  assert.equal(problem.title, 'NOT_IMPLEMENTED');
  assert.equal(problem.instance, '/v2/batch-operations/search');
  assert.match(problem.detail, /POST \/v2\/batch-operations\/search/);
});
