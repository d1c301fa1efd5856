"""Fault injection over a live crawl: N kills (SIGKILL at random points) and random faults.

The fake API on 127.0.0.1 serves a world of about 4,000 threads (3 GitHub repositories with
issues, pull requests and discussions, 17 Hugging Face models); a reference crawl runs without
faults.  The chaos crawl runs in a subprocess that is killed with SIGKILL ``--kills`` times at
random points (mid-request, or while an answer is being archived) and restarted (it resumes),
while the server injects every fault kind at least once and random ones after (5xx, 429 with and
without Retry-After, secondary limits, slow answers, truncated and malformed bodies, resets,
HTML and empty 200s, GraphQL ``data: null``, ``repository: null``, null nodes, timeouts; pages
too big to answer in time).  It prints the threads lost, duplicated and differing against the
reference (all must be 0) and every distinct error message the crawl logged, and exits with
status 1 otherwise.  ``make chaos`` runs it; ``--kills 3 --size 0.1`` is the CI size.
"""

from __future__ import annotations

import sys

from secmine_testing.chaos import main

if __name__ == "__main__":
    sys.exit(main())
