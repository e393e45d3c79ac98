from tests.sandbox.harness import patient, sandbox_url, sink

__all__ = ["patient", "sandbox_url", "sink"]
