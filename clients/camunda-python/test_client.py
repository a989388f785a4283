"""Camunda's own Python client (camunda-orchestration-sdk, from PyPI) against a
real `baton serve` on a temporary SQLite file: deploy, start, a job worker
written as the SDK's guide writes one (raising JobFailure and JobError), a
message, a user task, and the results read back.

BATON_BIN names the binary (scripts/test passes the release build).
"""

import asyncio
import json
import sys
import time
import unittest
from pathlib import Path

from camunda_orchestration_sdk import (
    CamundaAsyncClient,
    CamundaClient,
    ConnectedJobContext,
    JobError,
    JobFailure,
    WorkerConfig,
)
from camunda_orchestration_sdk.models import (
    MessagePublicationRequest,
    ProcessCreationById,
    ProcessInstanceSearchQuery,
    UserTaskCompletionRequest,
    UserTaskSearchQuery,
    VariableSearchQuery,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from baton_server import BatonServer  # noqa: E402

ORDER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="http://example.org">
  <bpmn:message id="paid" name="payment-received"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message>
  <bpmn:error id="declined" errorCode="CARD_DECLINED"/>
  <bpmn:process id="order" name="Order" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="charge"/>
    <bpmn:serviceTask id="charge"><bpmn:extensionElements><zeebe:taskDefinition type="charge" retries="2"/></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:boundaryEvent id="declined-card" attachedToRef="charge"><bpmn:errorEventDefinition errorRef="declined"/></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f-declined" sourceRef="declined-card" targetRef="rejected"/>
    <bpmn:endEvent id="rejected"/>
    <bpmn:sequenceFlow id="f2" sourceRef="charge" targetRef="wait-payment"/>
    <bpmn:intermediateCatchEvent id="wait-payment"><bpmn:messageEventDefinition messageRef="paid"/></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="wait-payment" targetRef="approve"/>
    <bpmn:userTask id="approve" name="Approve"><bpmn:extensionElements><zeebe:userTask/></bpmn:extensionElements></bpmn:userTask>
    <bpmn:sequenceFlow id="f4" sourceRef="approve" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def eventually(check, what: str):
    """Polls until `check` returns a value: the worker runs in its own task."""
    for _ in range(200):
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


class CamundaPythonClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = BatonServer("baton-camunda-python-")
        cls.work = cls.server.work
        cls.configuration = {"CAMUNDA_REST_ADDRESS": f"{cls.server.base}/v2", "CAMUNDA_AUTH_STRATEGY": "NONE"}

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_deploy_start_work_correlate_and_complete(self):
        client = CamundaClient(configuration=self.configuration)
        bpmn = Path(self.work) / "order.bpmn"
        bpmn.write_text(ORDER)
        deployment = client.deploy_resources_from_files([str(bpmn)])
        self.assertEqual([p.process_definition_id for p in deployment.processes], ["order"])

        def start(order_id: str, card: str) -> str:
            data = ProcessCreationById.from_dict({"processDefinitionId": "order", "variables": {"orderId": order_id, "card": card}})
            return client.create_process_instance(data=data).process_instance_key

        paid, flaky, declined = start("p-1", "good"), start("p-2", "flaky"), start("p-3", "stolen")

        # The worker, as the SDK's guide writes one: raise JobFailure or JobError, or return variables.
        attempts: dict[str, int] = {}
        handled: list[str] = []

        async def charge(job: ConnectedJobContext) -> dict[str, object]:
            variables = job.variables.to_dict()
            order_id = variables["orderId"]
            attempts[order_id] = attempts.get(order_id, 0) + 1
            if variables["card"] == "stolen":
                raise JobError(error_code="CARD_DECLINED", message="the card is reported stolen")
            if variables["card"] == "flaky" and attempts[order_id] == 1:
                raise JobFailure(message="the bank timed out", retry_back_off=0)
            handled.append(order_id)
            return {"charged": True}

        def charged(key: str) -> bool:
            found = client.search_variables(data=VariableSearchQuery.from_dict({"filter": {"processInstanceKey": key}}))
            return any(v.name == "charged" for v in found.items)

        async def work() -> None:
            async with CamundaAsyncClient(configuration=self.configuration) as worker_client:
                worker_client.create_job_worker(config=WorkerConfig(job_type="charge", job_timeout_milliseconds=30_000, request_timeout_milliseconds=1_000), callback=charge)
                runner = asyncio.create_task(worker_client.run_workers())
                for _ in range(200):
                    # Stopped once the server holds both completions: the SDK
                    # completes a job after its callback returns, so a worker
                    # stopped as the callback returned lost the last one.
                    if len(handled) == 2 and attempts.get("p-3") and await asyncio.to_thread(lambda: charged(paid) and charged(flaky)):
                        break
                    await asyncio.sleep(0.05)
                runner.cancel()
                try:
                    await runner
                except (asyncio.CancelledError, Exception):
                    pass

        asyncio.run(work())
        self.assertEqual(sorted(handled), ["p-1", "p-2"])
        self.assertEqual(attempts["p-2"], 2, "the failed job came back once")

        def state_of(key: str) -> str:
            return str(client.get_process_instance(process_instance_key=key).state)

        eventually(lambda: state_of(declined).endswith("COMPLETED"), "the declined order ends at its error boundary")

        for order_id in ["p-1", "p-2"]:
            client.publish_message(data=MessagePublicationRequest.from_dict({"name": "payment-received", "correlationKey": order_id, "timeToLive": 60_000, "variables": {"paidBy": order_id}}))

        tasks = eventually(
            lambda: [t for t in client.search_user_tasks(data=UserTaskSearchQuery.from_dict({"filter": {"state": "CREATED", "processDefinitionId": "order"}})).items],
            "two approvals wait",
        )
        self.assertEqual(len(tasks), 2)
        for task in tasks:
            self.assertEqual(task.element_id, "approve")
            client.complete_user_task(user_task_key=task.user_task_key, data=UserTaskCompletionRequest.from_dict({"variables": {"approved": True}}))

        completed = client.search_process_instances(data=ProcessInstanceSearchQuery.from_dict({"filter": {"processDefinitionId": "order", "state": "COMPLETED"}}))
        self.assertEqual(sorted(str(i.process_instance_key) for i in completed.items), sorted([paid, flaky, declined]))
        variables = client.search_variables(data=VariableSearchQuery.from_dict({"filter": {"processInstanceKey": flaky}}))
        values = {v.name: json.loads(v.value) for v in variables.items}
        self.assertEqual((values["charged"], values["approved"], values["paidBy"]), (True, True, "p-2"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
