"""Test doubles for secmine's tests and benchmarks (not part of the product package).

``secmine_testing.fake_api``     a fake Hugging Face + GitHub API on 127.0.0.1 with injectable faults
``secmine_testing.clock``        :class:`~secmine_testing.clock.FakeClock`, a clock whose sleeps are instant
``secmine_testing.chaos``        the fault-injection suite (benchmarks/chaos.py, make chaos)
``secmine_testing.tiny_models``  tiny BERT/DistilBERT models for the transformer code paths
"""
