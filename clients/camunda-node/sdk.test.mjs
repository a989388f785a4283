// Camunda's older TypeScript SDK (@camunda8/sdk, from npm), whose REST client
// Camunda's getting-started project uses for its Node.js workers: the same
// three workers (check-inventory, charge-payment, ship-items) against a real
// `baton serve`, with only the address set; then its gRPC client (which sends
// gzip-compressed messages) against the Zeebe gateway.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Camunda8 } from '@camunda8/sdk';
import { startBaton } from './baton-server.mjs';

const ORDER = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="http://example.org">
  <bpmn:process id="order-process" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="inventory"/>
    <bpmn:serviceTask id="inventory"><bpmn:extensionElements><zeebe:taskDefinition type="check-inventory"/></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="inventory" targetRef="payment"/>
    <bpmn:serviceTask id="payment"><bpmn:extensionElements><zeebe:taskDefinition type="charge-payment"/></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:sequenceFlow id="f3" sourceRef="payment" targetRef="shipping"/>
    <bpmn:serviceTask id="shipping"><bpmn:extensionElements><zeebe:taskDefinition type="ship-items"/></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:sequenceFlow id="f4" sourceRef="shipping" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>`;

let server;

before(async () => {
  server = await startBaton('baton-camunda-sdk-', { grpc: true });
});

after(() => server?.stop());

test("the getting-started order process runs with @camunda8/sdk's REST workers", async () => {
  const c8 = new Camunda8({ ZEEBE_REST_ADDRESS: server.base, CAMUNDA_AUTH_STRATEGY: 'NONE', CAMUNDA_LOG_LEVEL: 'error' });
  const client = c8.getCamundaRestClient();
  const file = join(server.work, 'order-process.bpmn');
  writeFileSync(file, ORDER);
  const deployed = await client.deployResourcesFromFiles([file]);
  assert.equal(deployed.processes[0].processDefinitionId, 'order-process');

  const keys = [];
  for (const item of ['rocket', 'fuel', undefined]) {
    const instance = await client.createProcessInstance({ processDefinitionId: 'order-process', variables: item ? { item } : {} });
    keys.push(instance.processInstanceKey);
  }
  const seen = { 'check-inventory': 0, 'charge-payment': 0, 'ship-items': 0 };
  const workers = Object.keys(seen).map((type) =>
    client.createJobWorker({
      type,
      timeout: 10000,
      maxJobsToActivate: 5,
      worker: `${type}-worker`,
      jobHandler: async (job) => {
        seen[type]++;
        if (type === 'check-inventory') return job.complete({ item: `${job.variables.item || 'default-item'} allocated` });
        return job.complete();
      },
    }),
  );
  // Until the three have completed (a handler counts its job before its
  // completion reaches the server), and only then stop the workers.
  const completed = () => client.searchProcessInstances({ filter: { processDefinitionId: 'order-process', state: 'COMPLETED' } });
  try {
    for (let i = 0; i < 200 && (await completed()).items.length < 3; i++) await new Promise((r) => setTimeout(r, 50));
  } finally {
    workers.forEach((worker) => worker.stop());
  }
  assert.deepEqual(seen, { 'check-inventory': 3, 'charge-payment': 3, 'ship-items': 3 });
  const found = await completed();
  assert.deepEqual(found.items.map((i) => i.processInstanceKey).sort(), [...keys].sort());
  const variables = await client.searchVariables({ filter: { processInstanceKey: keys[2], name: 'item' } });
  assert.equal(JSON.parse(variables.items[0].value), 'default-item allocated');
});

test("@camunda8/sdk's gRPC client deploys, starts, works and awaits a result through the Zeebe gateway", async () => {
  const c8 = new Camunda8({ ZEEBE_GRPC_ADDRESS: server.grpc, ZEEBE_REST_ADDRESS: server.base, CAMUNDA_AUTH_STRATEGY: 'NONE', CAMUNDA_LOG_LEVEL: 'error', zeebeGrpcSettings: { ZEEBE_CLIENT_LOG_LEVEL: 'NONE' } });
  const zeebe = c8.getZeebeGrpcApiClient();
  assert.equal((await zeebe.topology()).brokers.length, 1);
  const file = join(server.work, 'order-process-grpc.bpmn');
  writeFileSync(file, ORDER.replace('id="order-process"', 'id="order-process-grpc"'));
  const deployed = await zeebe.deployResource({ processFilename: file });
  assert.equal(deployed.deployments[0].process.bpmnProcessId, 'order-process-grpc');
  const workers = ['check-inventory', 'charge-payment', 'ship-items'].map((taskType) =>
    zeebe.createWorker({ taskType, taskHandler: (job) => job.complete(taskType === 'check-inventory' ? { item: `${job.variables.item} allocated` } : {}) }),
  );
  try {
    const result = await zeebe.createProcessInstanceWithResult({ bpmnProcessId: 'order-process-grpc', variables: { item: 'rocket' }, requestTimeout: 20000 });
    assert.equal(result.variables.item, 'rocket allocated');
  } finally {
    await Promise.all(workers.map((worker) => worker.close()));
    await zeebe.close();
  }
});
