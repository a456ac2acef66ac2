"""Counts stay true (issue 12, requirement 9): `cancel job` on a running job takes it out of
admin `status`, GET_STATUS and /api/* at once, not when its worker lets go of it."""

import json
import unittest

import gearman_wire as gw
from broker_checks import BrokerCase, admin_lines, http_get, parse_prometheus


class CancelRunningJob(BrokerCase):
    def test_cancel_of_a_running_job_updates_every_view_at_once(self):
        server = self.start_with_http()
        worker = self.connect()
        worker.can_do(b"f")
        client = self.connect()
        handle = client.submit(gw.SUBMIT_JOB_BG, b"f", b"u1", b"d")
        assign = worker.grab()
        self.assertEqual(assign.type, gw.JOB_ASSIGN)
        self.assertEqual(assign.args(3)[0], handle)

        def views():
            status = admin_lines(server.port, "status")
            with self.connect() as c:
                st = c.request(gw.GET_STATUS, handle).args()
            api = json.loads(http_get(server.http_port, "/api/status")[2])
            jobs = json.loads(http_get(server.http_port, "/api/jobs")[2])
            workers = json.loads(http_get(server.http_port, "/api/workers")[2])
            samples = parse_prometheus(http_get(server.http_port, "/metrics")[2])
            fn = [f for f in api["functions"] if f["name"] == "f"][0]
            return {
                "status": status,
                "get_status": (st[1], st[2]),
                "api_running": (fn["running"], api["totals"]["running"]),
                "api_jobs": [j["handle"] for j in jobs["jobs"]],
                "api_workers": workers["workers"][0]["running"],
                "metrics": samples[("roundhouse_jobs_running", (("function", "f"),))],
            }

        before = views()
        self.assertEqual(before["status"], [b"f\t1\t1\t1"])
        self.assertEqual(before["get_status"], (b"1", b"1"))
        self.assertEqual(before["api_running"], (1, 1))
        self.assertEqual(before["api_jobs"], [handle.decode()])
        self.assertEqual(before["api_workers"], [handle.decode()])
        self.assertEqual(before["metrics"], 1.0)

        with self.connect() as admin:
            self.assertEqual(admin.admin(b"cancel job " + handle), b"OK\r\n")
        after = views()  # the worker has not sent anything yet: it still holds the job
        self.assertEqual(after["status"], [b"f\t0\t0\t1"])
        self.assertEqual(after["get_status"], (b"0", b"0"))
        self.assertEqual(after["api_running"], (0, 0))
        self.assertEqual(after["api_jobs"], [])
        self.assertEqual(after["api_workers"], [])
        self.assertEqual(after["metrics"], 0.0)

        # The worker's late result is accepted and discarded, and counted nowhere.
        worker.work_complete(handle, b"late")
        worker.assert_quiet()
        self.assertEqual(admin_lines(server.port, "status"), [b"f\t0\t0\t1"])
        samples = parse_prometheus(http_get(server.http_port, "/metrics")[2])
        self.assertEqual(samples[("roundhouse_jobs_completed_total", (("function", "f"),))], 0.0)


if __name__ == "__main__":
    unittest.main()
