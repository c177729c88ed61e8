"""The loaded application kept out of the garbage collector's full passes.

A loaded portal is about 300,000 objects the cycle collector tracks (modules, SQLAlchemy's mappers and
compiled statements, Jinja's templates, Babel's catalogues), alive as long as the process. Each full
collection walks all of them: measured in a gunicorn worker under load (bench/README.md, ``gc_pauses.py``),
230-250 ms with every thread of the worker stopped, about once per 1,000 requests. Frozen once loaded
(``gc.freeze``: our workers load the app after the fork, so the freeze comes after the load, not before the
fork), a full collection walks only what requests made since: 30-40 ms.
"""

from __future__ import annotations

import gc


def freeze_loaded_app() -> int:
    """Collect the start-up's garbage, then move every object alive now to the collector's permanent
    generation (still freed by reference counting; only the cycle search skips them). Call it once the app
    is loaded and before the first request or job. Returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
