"""unittest discovery with a per-test result file (one JSON object a line).
usage: python runner.py RESULTS.jsonl [pattern ...]  (run from the folder holding the upstream tests/)"""
import json, sys, time, unittest, traceback

out = open(sys.argv[1], "w")
names = sys.argv[2:]


class R(unittest.TextTestResult):
    def _rec(self, test, status, err=None):
        d = {"id": test.id(), "status": status, "t": round(time.time() - getattr(self, "_t0", time.time()), 1)}
        if err is not None:
            d["err"] = "".join(traceback.format_exception(*err))[-4000:] if isinstance(err, tuple) else str(err)
        out.write(json.dumps(d) + "\n"); out.flush()

    def startTest(self, test):
        self._t0 = time.time(); super().startTest(test)

    def addSuccess(self, t): super().addSuccess(t); self._rec(t, "ok")
    def addFailure(self, t, e): super().addFailure(t, e); self._rec(t, "FAIL", e)
    def addError(self, t, e): super().addError(t, e); self._rec(t, "ERROR", e)
    def addSkip(self, t, r): super().addSkip(t, r); self._rec(t, "skip", r)
    def addExpectedFailure(self, t, e): super().addExpectedFailure(t, e); self._rec(t, "xfail")
    def addUnexpectedSuccess(self, t): super().addUnexpectedSuccess(t); self._rec(t, "xpass")


loader = unittest.TestLoader()
if names:
    sys.path.insert(0, "tests")
    suite = loader.loadTestsFromNames(names)
else:
    suite = loader.discover("tests")
res = unittest.TextTestRunner(verbosity=2, resultclass=R).run(suite)
sys.exit(0 if res.wasSuccessful() else 1)
