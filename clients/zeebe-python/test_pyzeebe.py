"""pyzeebe (a Zeebe gRPC client, from PyPI) against a real `baton serve
--grpc-listen`: topology, deploy, start, a worker as pyzeebe's guide writes
one (a failure retried, a BusinessError caught by a boundary event), a
message, a start that waits for the result, a cancellation, and a worker that
takes its jobs by streaming.

BATON_BIN names the binary (scripts/test passes the release build).
"""

import asyncio
import json
import sys
import unittest
import urllib.request
from pathlib import Path

from pyzeebe import ZeebeClient, ZeebeWorker, create_insecure_channel
from pyzeebe.errors import BusinessError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from baton_server import BatonServer  # noqa: E402

ORDER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="http://example.org">
  <bpmn:message id="paid" name="payment-received"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message>
  <bpmn:error id="declined" errorCode="CARD_DECLINED"/>
  <bpmn:process id="order" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="charge"/>
    <bpmn:serviceTask id="charge"><bpmn:extensionElements><zeebe:taskDefinition type="charge" retries="2"/></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:boundaryEvent id="declined-card" attachedToRef="charge"><bpmn:errorEventDefinition errorRef="declined"/></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f-declined" sourceRef="declined-card" targetRef="rejected"/>
    <bpmn:endEvent id="rejected"/>
    <bpmn:sequenceFlow id="f2" sourceRef="charge" targetRef="wait-payment"/>
    <bpmn:intermediateCatchEvent id="wait-payment"><bpmn:messageEventDefinition messageRef="paid"/></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="wait-payment" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
  <bpmn:process id="quote" isExecutable="true">
    <bpmn:startEvent id="q-start"/>
    <bpmn:sequenceFlow id="q1" sourceRef="q-start" targetRef="price"/>
    <bpmn:serviceTask id="price"><bpmn:extensionElements><zeebe:taskDefinition type="price"/></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:sequenceFlow id="q2" sourceRef="price" targetRef="q-end"/>
    <bpmn:endEvent id="q-end"/>
  </bpmn:process>
</bpmn:definitions>
"""


class PyZeebe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = BatonServer("baton-pyzeebe-", grpc=True)
        cls.work, cls.base, cls.grpc_port = cls.server.work, cls.server.base, cls.server.grpc_port

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def instance(self, key: int) -> dict:
        with urllib.request.urlopen(f"{self.base}/v2/process-instances/{key}") as answer:
            return json.load(answer)

    def test_a_worker_and_a_starter_through_the_zeebe_gateway(self):
        asyncio.run(self.scenario())

    async def scenario(self):
        channel = create_insecure_channel(grpc_address=f"127.0.0.1:{self.grpc_port}")
        client = ZeebeClient(channel)
        topology = await client.topology()
        self.assertEqual((topology.cluster_size, topology.partitions_count), (1, 1))

        bpmn = Path(self.work) / "order.bpmn"
        bpmn.write_text(ORDER)
        deployed = await client.deploy_resource(str(bpmn))
        self.assertEqual(sorted(d.bpmn_process_id for d in deployed.deployments), ["order", "quote"])

        attempts: dict[str, int] = {}
        handled: list[str] = []
        worker = ZeebeWorker(channel, name="charger", request_timeout=1000)

        @worker.task(task_type="charge")
        async def charge(orderId: str, card: str) -> dict:
            attempts[orderId] = attempts.get(orderId, 0) + 1
            if card == "stolen":
                raise BusinessError("CARD_DECLINED", "the card is reported stolen")
            if card == "flaky" and attempts[orderId] == 1:
                raise RuntimeError("the bank timed out")
            handled.append(orderId)
            return {"charged": True}

        started = {}
        for order_id, card in [("g-1", "good"), ("g-2", "flaky"), ("g-3", "stolen"), ("g-4", "good")]:
            created = await client.run_process("order", variables={"orderId": order_id, "card": card})
            started[order_id] = created.process_instance_key
        self.assertGreater(started["g-1"], 0)

        working = asyncio.create_task(worker.work())
        for _ in range(200):
            if len(handled) == 3 and attempts.get("g-3"):
                break
            await asyncio.sleep(0.05)
        await worker.stop()
        working.cancel()
        self.assertEqual(sorted(handled), ["g-1", "g-2", "g-4"])
        self.assertEqual(attempts["g-2"], 2, "the failed job came back once")
        self.assertEqual(self.instance(started["g-3"])["state"], "COMPLETED", "the declined order ended at its error boundary")

        await client.publish_message("payment-received", "g-1", variables={"paid": True})
        self.assertEqual(self.instance(started["g-1"])["state"], "COMPLETED")
        await client.cancel_process_instance(started["g-4"])
        self.assertEqual(self.instance(started["g-4"])["state"], "TERMINATED")

        # A starter that waits for the result, served by a worker that takes its jobs by streaming.
        streamer = ZeebeWorker(channel, name="pricer", stream_enabled=True, request_timeout=1000)

        @streamer.task(task_type="price")
        async def price(amount: int) -> dict:
            return {"price": amount * 2}

        streaming = asyncio.create_task(streamer.work())
        result = await client.run_process_with_result("quote", variables={"amount": 21}, timeout=10_000, variables_to_fetch=["price"])
        self.assertEqual(result.variables, {"price": 42})
        await streamer.stop()
        streaming.cancel()


if __name__ == "__main__":
    unittest.main(verbosity=2)
